// Sign-in with OpenID Connect providers: the provider identities linked to accounts, and the
// sign-ins (or links) started at a provider and not yet finished (their state).
import { removeSignInMethod } from "./sign-in-methods.js";
import { rows, type Tx } from "./tx.js";

export interface FederatedIdentityRow {
  readonly userId: string;
  readonly provider: string;
  readonly subject: string;
  /** The email address the provider gave when the identity was linked (display only). */
  readonly email: string | null;
  readonly createdAt: Date;
}

export type FederationPurpose = "login" | "link";

export interface FederationStateRow {
  readonly provider: string;
  /** Nonce and PKCE verifier, sealed with the key-encryption key (domain/federation). */
  readonly secretsSealed: Buffer;
  readonly redirectUri: string;
  readonly purpose: FederationPurpose;
  /** The account a link was started by; null for a sign-in. */
  readonly userId: string | null;
}

export interface NewFederationState extends FederationStateRow {
  /** SHA-256 of the state; the state itself is never stored. */
  readonly stateHash: Buffer;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

/** A new account created by a provider's sign-in, with its identity. */
export interface NewFederatedAccount {
  readonly provider: string;
  readonly subject: string;
  /** Canonical address, or null when the provider gave none (or one that is not valid). */
  readonly email: string | null;
  /** Whether the provider asserted `email_verified`: only then is the address verified here. */
  readonly emailVerified: boolean;
  readonly displayName: string;
  readonly role: string;
  readonly now: Date;
}

export type UnlinkOutcome = "unlinked" | "not_found" | "last_sign_in_method";

export interface FederationStore {
  insertState(tx: Tx, state: NewFederationState): Promise<void>;
  /**
   * Takes the started sign-in whose state hashes to `stateHash` if it has not expired: at most
   * once (the row goes with it); null when it is unknown, spent or expired.
   */
  consumeState(tx: Tx, stateHash: Buffer, now: Date): Promise<FederationStateRow | null>;
  findIdentity(tx: Tx, provider: string, subject: string): Promise<FederatedIdentityRow | null>;
  /** Links the identity to `userId`; null, changing nothing, when it is linked to an account already. */
  link(tx: Tx, userId: string, provider: string, subject: string, email: string | null, now: Date): Promise<FederatedIdentityRow | null>;
  /**
   * Creates the account and links the identity to it; null when a current account has the email
   * address already (someone took it meanwhile). UniqueViolationError when the identity is linked.
   */
  createAccount(tx: Tx, account: NewFederatedAccount): Promise<string | null>;
  /** The account's linked identities, oldest first. */
  listIdentities(tx: Tx, userId: string): Promise<FederatedIdentityRow[]>;
  unlink(tx: Tx, userId: string, provider: string, subject: string): Promise<UnlinkOutcome>;
}

interface IdentityColumns {
  user_id: string;
  provider: string;
  subject: string;
  email: string | null;
  created_at: Date;
}

function identityRow(r: IdentityColumns): FederatedIdentityRow {
  return { userId: r.user_id, provider: r.provider, subject: r.subject, email: r.email, createdAt: r.created_at };
}

const IDENTITY_COLUMNS = "user_id, provider, subject, email, created_at";

export const federationStore: FederationStore = {
  async insertState(tx, s) {
    // Started sign-ins nobody finished go here, a few at a time (the expiry index finds them).
    await rows(tx,
      `DELETE FROM federation_states WHERE state_hash IN (
         SELECT state_hash FROM federation_states WHERE expires_at < $1 ORDER BY expires_at LIMIT 100)`,
      [s.createdAt],
    );
    await rows(tx,
      `INSERT INTO federation_states (state_hash, provider, secrets_sealed, redirect_uri, purpose, user_id, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [s.stateHash, s.provider, s.secretsSealed, s.redirectUri, s.purpose, s.userId, s.createdAt, s.expiresAt],
    );
  },

  async consumeState(tx, stateHash, now) {
    // One conditional DELETE: a state is single use (of two callbacks presenting it, one gets the
    // row and the other nothing) and dies with its expiry; an expired row is left for insertState
    // to clear, so a late callback changes nothing.
    const [row] = await rows<{ provider: string; secrets_sealed: Buffer; redirect_uri: string; purpose: FederationPurpose; user_id: string | null }>(tx,
      `DELETE FROM federation_states WHERE state_hash = $1 AND expires_at > $2
       RETURNING provider, secrets_sealed, redirect_uri, purpose, user_id`,
      [stateHash, now],
    );
    return row ? { provider: row.provider, secretsSealed: row.secrets_sealed, redirectUri: row.redirect_uri, purpose: row.purpose, userId: row.user_id } : null;
  },

  async findIdentity(tx, provider, subject) {
    const [row] = await rows<IdentityColumns>(tx,
      `SELECT ${IDENTITY_COLUMNS} FROM federated_identities WHERE provider = $1 AND subject = $2`,
      [provider, subject],
    );
    return row ? identityRow(row) : null;
  },

  async link(tx, userId, provider, subject, email, now) {
    // The unique (provider, subject) decides: a subject is linked to one account, whatever committed in between.
    const [row] = await rows<IdentityColumns>(tx,
      `INSERT INTO federated_identities (user_id, provider, subject, email, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (provider, subject) DO NOTHING RETURNING ${IDENTITY_COLUMNS}`,
      [userId, provider, subject, email, now],
    );
    return row ? identityRow(row) : null;
  },

  async createAccount(tx, a) {
    // One statement: the account and its identity exist together or not at all. An address a
    // current account has (users_email_key on lower(email)) creates nothing: the caller decides
    // again with that account in view.
    const [row] = await rows<{ user_id: string }>(tx,
      `WITH account AS (
         INSERT INTO users (email, email_verified_at, display_name, role, status, created_at, updated_at)
         VALUES ($3, CASE WHEN $4::boolean THEN $7::timestamptz END, $5, $6, 'active', $7, $7)
         ON CONFLICT (lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL DO NOTHING
         RETURNING id
       )
       INSERT INTO federated_identities (user_id, provider, subject, email, created_at)
       SELECT id, $1, $2, $3, $7 FROM account RETURNING user_id`,
      [a.provider, a.subject, a.email, a.emailVerified, a.displayName, a.role, a.now],
    );
    return row?.user_id ?? null;
  },

  async listIdentities(tx, userId) {
    const found = await rows<IdentityColumns>(tx,
      `SELECT ${IDENTITY_COLUMNS} FROM federated_identities WHERE user_id = $1 ORDER BY created_at, provider, subject`,
      [userId],
    );
    return found.map(identityRow);
  },

  async unlink(tx, userId, provider, subject) {
    // The last-sign-in-method rule (sign-in-methods.ts), shared with RemovePasskey.
    const outcome = await removeSignInMethod(tx, userId, "identity", [provider, subject]);
    return outcome === "removed" ? "unlinked" : outcome;
  },
};
