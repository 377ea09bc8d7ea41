// The store: all SQL of the service, one module per aggregate, each function taking a
// transaction handle (tx.ts). The interfaces are declared beside their implementations; the
// domain imports them as types and receives a Store built once by the composition root (app.ts).
import { adminUserStore, type AdminUserStore } from "./admin-users.js";
import { auditEventStore, type AuditEventStore } from "./audit.js";
import { createDatabaseHealth, type DatabaseHealth } from "./health.js";
import { federationStore, type FederationStore } from "./federation.js";
import { backupCodeStore, mfaChallengeStore, mfaCodeFactorStore, totpStore, type BackupCodeStore, type MfaChallengeStore, type MfaCodeFactorStore, type TotpStore } from "./mfa.js";
import { otpCodeStore, type OtpCodeStore } from "./otp-codes.js";
import { passkeyStore, webauthnChallengeStore, type PasskeyStore, type WebAuthnChallengeStore } from "./passkeys.js";
import { rateLimitStore, type RateLimitStore } from "./rate-limits.js";
import { createRevocationFeed, type RevocationFeed } from "./revocation-feed.js";
import { serviceAccountStore, type ServiceAccountStore } from "./service-accounts.js";
import { sessionStore, type SessionStore } from "./sessions.js";
import { signingKeyStore, type SigningKeyStore } from "./signing-keys.js";
import { secretStore, type SecretStore } from "./secrets.js";
import { transactions, type Database, type Transactions } from "./tx.js";
import { userStore, withDefaultRole, type UserStore } from "./users.js";

export interface Store extends Transactions {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly otpCodes: OtpCodeStore;
  readonly rateLimits: RateLimitStore;
  readonly totp: TotpStore;
  readonly backupCodes: BackupCodeStore;
  readonly mfaChallenges: MfaChallengeStore;
  readonly mfaCodeFactors: MfaCodeFactorStore;
  readonly signingKeys: SigningKeyStore;
  readonly audit: AuditEventStore;
  readonly serviceAccounts: ServiceAccountStore;
  readonly revocationFeed: RevocationFeed;
  readonly health: DatabaseHealth;
  /** AdminService's search and state changes (issue 15). */
  readonly adminUsers: AdminUserStore;
  /** Passkeys and their WebAuthn challenges (issue 17). */
  readonly passkeys: PasskeyStore;
  readonly webauthnChallenges: WebAuthnChallengeStore;
  /** Provider identities and started federated sign-ins (issue 17). */
  readonly federation: FederationStore;
  /** HMAC keys and sealed columns (the KEK keyring, issue 18). */
  readonly secrets: SecretStore;
}

export interface StoreOptions {
  /** DEFAULT_ROLE: the role of accounts created without one (sign-up, sign-up by code); "user" when left out. */
  readonly defaultRole?: string;
}

export function createStore(db: Database, options: StoreOptions = {}): Store {
  return {
    ...transactions(db),
    users: options.defaultRole === undefined ? userStore : withDefaultRole(userStore, options.defaultRole),
    sessions: sessionStore,
    otpCodes: otpCodeStore,
    rateLimits: rateLimitStore,
    totp: totpStore,
    backupCodes: backupCodeStore,
    mfaChallenges: mfaChallengeStore,
    mfaCodeFactors: mfaCodeFactorStore,
    signingKeys: signingKeyStore,
    audit: auditEventStore,
    serviceAccounts: serviceAccountStore,
    revocationFeed: createRevocationFeed(db),
    health: createDatabaseHealth(db),
    adminUsers: adminUserStore,
    passkeys: passkeyStore,
    webauthnChallenges: webauthnChallengeStore,
    federation: federationStore,
    secrets: secretStore,
  };
}

export type { Database, Transactions, Tx } from "./tx.js";
export * from "./errors.js";
export type { AuditEventRow } from "./audit.js";
export type { SessionRow } from "./sessions.js";
export type { SigningKeyRow } from "./signing-keys.js";
export type { UserRow, UserStatus } from "./users.js";
export type { RateLimitRule } from "./rate-limits.js";
export type { OtpPurpose } from "./otp-codes.js";
export type { ContactChannel, IdentifierKind, ClaimedContact, ProfileValues } from "./users.js";
export type { RevocationEvent, RevocationFeed, RevocationHandlers, RevocationListener } from "./revocation-feed.js";
export type { CertificateKind, ServiceAccountRow, ServiceAccountStatus, ServiceAccountsSnapshot } from "./service-accounts.js";
export { LISTENER_APPLICATION_NAME } from "./revocation-feed.js";
export type { SessionSelector } from "./sessions.js";
export type { ChallengePurpose, PasskeyDeviceType, PasskeyRow } from "./passkeys.js";
export type { HmacPurpose, SealedColumn } from "./secrets.js";
export { SEALED_COLUMNS } from "./secrets.js";
export type { AdminGuard, AdminUserRow, MfaReset, UserFilter } from "./admin-users.js";
export type { FederatedIdentityRow, FederationPurpose, FederationStateRow, UnlinkOutcome } from "./federation.js";
