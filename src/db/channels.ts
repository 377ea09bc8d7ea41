// PostgreSQL NOTIFY channels: declared once, for the migrations that create the triggers and
// for src/store/revocation-feed.ts, which listens.

/** Session revocations and account token invalidations (RevocationNotify migration). */
export const REVOCATION_CHANNEL = "identity_revocations";
