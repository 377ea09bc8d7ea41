// Every error reason the service answers, declared once: its canonical gRPC code, the generic
// message a client receives, and the sentence the browser app shows. Three readers derive from
// this table, so a reason missing any of them does not compile:
//   src/domain/errors.ts   the ErrorReason type an AppError carries;
//   src/services/errors.ts the wire table (code as a Connect Code, message, ErrorInfo reason);
//   src/web/errors.ts      the browser app's sentences.
// README.md's "Errors" table lists every reason with its code (test/unit/error-reasons.test.ts).
//
// No imports: the domain, the services and the browser bundle all read this file, and it must
// pull neither server code into the browser nor the services into the domain. Codes are therefore
// canonical names (as in google.rpc.Code and grpcurl's output); services/errors.ts maps each
// name to a Connect `Code`.

/** The canonical gRPC status codes an error reason may carry (OK is never an error). */
export type CanonicalCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

export interface ErrorReasonSpec {
  readonly code: CanonicalCode;
  /** What every client receives as the error message: generic; details go to the server log. */
  readonly client: string;
  /**
   * The browser app's sentence, or null when it has none of its own: the app then answers from
   * the details (field violations, RetryInfo) or from the code.
   */
  readonly browser: string | null;
}

const SESSION_ENDED = "Your session has ended. Please sign in again.";

export const ERROR_REASONS = {
  // The browser app names each field violation instead.
  INVALID_ARGUMENT: { code: "INVALID_ARGUMENT", client: "invalid request; see the field violations", browser: null },
  IDENTIFIER_TAKEN: { code: "ALREADY_EXISTS", client: "an account with this email, username or phone already exists", browser: "An account with this email address, username or phone number already exists." },
  // The same whether or not the account exists.
  INVALID_CREDENTIALS: { code: "UNAUTHENTICATED", client: "invalid credentials", browser: "The username, email, phone number or password is not correct." },
  // Only after the right password (a wrong one is INVALID_CREDENTIALS, as for an unknown account).
  ACCOUNT_DELETED: { code: "PERMISSION_DENIED", client: "the account has been deleted", browser: "Your account has been deleted." },
  ACCOUNT_DISABLED: { code: "PERMISSION_DENIED", client: "the account has been disabled", browser: "Your account has been disabled. Please contact support." },
  WRONG_PASSWORD: { code: "PERMISSION_DENIED", client: "the password is not correct", browser: "The password is not correct." },
  AUTHENTICATION_REQUIRED: { code: "UNAUTHENTICATED", client: "authentication required", browser: "Please sign in first." },
  ACCESS_TOKEN_INVALID: { code: "UNAUTHENTICATED", client: "the access token is not valid", browser: SESSION_ENDED },
  // VerifyToken's callers are backend services, never the browser app.
  SERVICE_KEY_REQUIRED: { code: "UNAUTHENTICATED", client: "a service credential is required", browser: null },
  // IssueServiceToken for an audience the calling service account was not granted.
  AUDIENCE_NOT_ALLOWED: { code: "PERMISSION_DENIED", client: "the service may not request a token for this audience", browser: null },
  // Unknown, revoked or expired key, or a disabled account: refused on every RPC, public ones too,
  // so that a backend holding a dead key fails loudly instead of calling anonymously.
  SERVICE_KEY_INVALID: { code: "UNAUTHENTICATED", client: "the service credential is not valid", browser: null },
  // A valid service caller whose account does not hold the permission the RPC declares.
  PERMISSION_MISSING: { code: "PERMISSION_DENIED", client: "the caller does not hold the permission this RPC needs", browser: null },
  // Service-account management (the CLI now, the admin API later).
  SERVICE_ACCOUNT_EXISTS: { code: "ALREADY_EXISTS", client: "a service account with this name already exists", browser: null },
  SERVICE_ACCOUNT_NOT_FOUND: { code: "NOT_FOUND", client: "no such service account", browser: null },
  SERVICE_KEY_NOT_FOUND: { code: "NOT_FOUND", client: "no service key has this prefix", browser: null },
  CERTIFICATE_IDENTITY_TAKEN: { code: "ALREADY_EXISTS", client: "this certificate identity already names a service account", browser: null },
  REFRESH_TOKEN_INVALID: { code: "UNAUTHENTICATED", client: "the refresh token is not valid", browser: SESSION_ENDED },
  REFRESH_TOKEN_REUSED: { code: "UNAUTHENTICATED", client: "the refresh token is not valid", browser: SESSION_ENDED },
  // Another refresh spent this token a moment ago: the session is fine. ABORTED (a concurrency
  // conflict, AIP-194): retry after RetryInfo with the newest refresh token, not this one.
  REFRESH_TOKEN_CONCURRENT: { code: "ABORTED", client: "the refresh token was just used by another request; retry with the newest refresh token", browser: "Your session was just refreshed in another tab. Please try again." },
  // A recent sign-in is needed (ChangeEmail, ChangePhone: REAUTH_MAX_AGE_SECONDS): the session
  // proves its factors again with AuthService.Reauthenticate, then retries.
  REAUTHENTICATION_REQUIRED: { code: "PERMISSION_DENIED", client: "a recent sign-in is required; call Reauthenticate and retry", browser: "For your security, please confirm your password first." },
  // Reauthenticate on an account created by a one-time code (it signs in again by code instead), and
  // EnableCodeFactor / DisableCodeFactor on one (a code is the second step after a password).
  PASSWORD_NOT_SET: { code: "FAILED_PRECONDITION", client: "the account has no password", browser: "This account has no password: sign in with a code, or set a password first." },
  SESSION_NOT_FOUND: { code: "NOT_FOUND", client: "session not found", browser: "That session has already ended." },
  // The browser app words the wait from RetryInfo.
  RATE_LIMITED: { code: "RESOURCE_EXHAUSTED", client: "too many requests; retry later", browser: null },
  // A one-time code that does not sign in or verify: the same whether or not an account owns
  // the destination. EXPIRED and ATTEMPTS_EXHAUSTED tell the client to ask for a new code.
  OTP_INVALID: { code: "UNAUTHENTICATED", client: "the code is not valid", browser: "That code is not correct. Check the code and try again." },
  OTP_EXPIRED: { code: "UNAUTHENTICATED", client: "the code has expired; request a new one", browser: "That code has expired. Please request a new one." },
  OTP_ATTEMPTS_EXHAUSTED: { code: "UNAUTHENTICATED", client: "too many wrong attempts; request a new code", browser: "Too many wrong codes. Please request a new one." },
  OTP_DELIVERY_FAILED: { code: "UNAVAILABLE", client: "the code could not be sent; retry later", browser: "The code could not be sent. Please try again later." },
  OTP_CHANNEL_DISABLED: { code: "FAILED_PRECONDITION", client: "codes cannot be sent on this channel", browser: "This server cannot send codes that way. Try the other channel." },
  OVERLOADED: { code: "RESOURCE_EXHAUSTED", client: "the service is busy; retry later", browser: "The service is busy. Please try again in a moment." },
  MFA_CODE_INVALID: { code: "UNAUTHENTICATED", client: "the second-factor code is not valid", browser: "That authenticator or backup code is not correct." },
  MFA_CHALLENGE_INVALID: { code: "UNAUTHENTICATED", client: "the MFA challenge is not valid; sign in again", browser: "The sign-in took too long. Please sign in again." },
  MFA_ALREADY_ENABLED: { code: "FAILED_PRECONDITION", client: "two-factor authentication is already enabled", browser: "Two-step verification is already on for this account." },
  MFA_NOT_ENABLED: { code: "FAILED_PRECONDITION", client: "two-factor authentication is not enabled", browser: "Two-step verification is not on for this account." },
  // A second-factor method this challenge does not offer (a code to the address the one-time-code
  // sign-in used, or a factor the account does not have), or a one-time-code sign-in whose only
  // second factor is a code to that same address.
  MFA_METHOD_UNAVAILABLE: { code: "FAILED_PRECONDITION", client: "this second-factor method cannot be used for this sign-in", browser: "That way of confirming is not available for this sign-in. Choose another, or sign in with your password." },
  // EnableCodeFactor for an email address or phone number that is missing or not verified.
  CONTACT_NOT_VERIFIED: { code: "FAILED_PRECONDITION", client: "the email address or phone number is missing or not verified", browser: "Verify this email address or phone number first." },
  DEADLINE_EXCEEDED: { code: "DEADLINE_EXCEEDED", client: "deadline exceeded", browser: "The service took too long to answer. Please try again." },
  UNAVAILABLE: { code: "UNAVAILABLE", client: "service unavailable; retry later", browser: "The service is not available right now. Please try again in a moment." },
  INTERNAL: { code: "INTERNAL", client: "internal error", browser: "Something went wrong on our side. Please try again." },
  // PostgreSQL did not answer within its bounds (DB_QUERY_TIMEOUT_MS, DB_POOL_WAIT_MS, ...), is
  // unreachable, or the breaker is open after a failed probe: retry after RetryInfo (issue 19).
  DATABASE_UNAVAILABLE: { code: "UNAVAILABLE", client: "the database is not answering; retry later", browser: "The service is not available right now. Please try again in a moment." },
  // VerifyToken (and every check of an access token) once the revocation state is older than
  // REVOCATION_MAX_STALENESS_MS: fail closed rather than accept a token revoked meanwhile.
  REVOCATIONS_STALE: { code: "UNAVAILABLE", client: "revocation state is stale; retry later", browser: "The service is not available right now. Please try again in a moment." },
  // Raised by the gateway's transport before any handler runs (services/errors.ts, transportReason).
  UNSUPPORTED_ENCODING: { code: "UNIMPLEMENTED", client: "unsupported compression; see the accept-encoding header", browser: "The request was sent in a form the service does not accept. Please reload the page and try again." },
  MALFORMED_FRAME: { code: "INVALID_ARGUMENT", client: "the request message could not be read", browser: "The request could not be read. Please reload the page and try again." },
  // AdminService (issue 15). A signed-in person whose role is not in ADMIN_ROLES.
  ADMIN_ROLE_REQUIRED: { code: "PERMISSION_DENIED", client: "administration needs an administrator's role", browser: "Your account may not use the administration." },
  // An administrator whose access token does not prove a second factor (amr `mfa`) within
  // ADMIN_MAX_AUTH_AGE_SECONDS. UNAUTHENTICATED, as RFC 9470's insufficient_user_authentication:
  // the person can fix it by signing in again with their authenticator.
  STEP_UP_REQUIRED: { code: "UNAUTHENTICATED", client: "administration needs a recent sign-in with a second factor", browser: "For administration, please sign in again with your authenticator code." },
  USER_NOT_FOUND: { code: "NOT_FOUND", client: "no such account", browser: "That account does not exist." },
  // Setting a role above the administrator's own.
  ROLE_ABOVE_OWN: { code: "PERMISSION_DENIED", client: "the role is above the caller's own", browser: "You cannot give a role above your own." },
  // Acting on an account whose role is above the administrator's own.
  ACCOUNT_ROLE_ABOVE_OWN: { code: "PERMISSION_DENIED", client: "the account's role is above the caller's own", browser: "You cannot change an account whose role is above yours." },
  // The change would leave the highest role without an active holder.
  LAST_OWNER: { code: "FAILED_PRECONDITION", client: "the highest role must keep an active holder", browser: "This is the last active account with the highest role: give the role to another account first." },
  // DisableUser, EnableUser, SetUserRole, ResetUserMfa or RevokeUserSessions on a deleted account.
  USER_DELETED: { code: "FAILED_PRECONDITION", client: "the account is deleted; restore it first", browser: "That account is deleted. Restore it first." },
  // RestoreUser on an account that is not deleted, or deleted longer ago than ACCOUNT_RESTORE_DAYS.
  NOT_RESTORABLE: { code: "FAILED_PRECONDITION", client: "the account is not deleted, or was deleted too long ago to restore", browser: "That account cannot be restored." },
  // The gateway's origin gate: a browser page on an origin that is neither its own nor listed.
  ORIGIN_NOT_ALLOWED: { code: "PERMISSION_DENIED", client: "origin not allowed", browser: "This page is not allowed to use the service." },
  // Passkeys (issue 17). A ceremony's challenge that is unknown, used, expired, or (registration)
  // started by another session: start again.
  WEBAUTHN_CHALLENGE_INVALID: { code: "UNAUTHENTICATED", client: "the passkey challenge is not valid; start again", browser: "The passkey request took too long or was already used. Please try again." },
  // The authenticator's response does not verify: wrong origin or RP ID, another challenge, a bad
  // signature, no user verification.
  WEBAUTHN_VERIFICATION_FAILED: { code: "UNAUTHENTICATED", client: "the passkey response could not be verified", browser: "Your passkey could not be verified. Please try again." },
  // A passkey sign-in with a credential no account has (never registered, or removed).
  PASSKEY_UNKNOWN: { code: "UNAUTHENTICATED", client: "this passkey is not registered", browser: "This passkey is not registered with any account. Sign in another way and add it again." },
  // The passkey's signature counter went back: a cloned authenticator (WebAuthn §6.1.1). Audited.
  PASSKEY_COUNTER_REGRESSED: { code: "UNAUTHENTICATED", client: "the passkey could not be trusted", browser: "This passkey could not be trusted. Sign in another way, and remove it from your account." },
  // RenamePasskey / RemovePasskey for an id the caller has no passkey by.
  PASSKEY_NOT_FOUND: { code: "NOT_FOUND", client: "no such passkey", browser: "That passkey no longer exists." },
  // FinishPasskeyRegistration for a credential that is registered already.
  PASSKEY_ALREADY_REGISTERED: { code: "ALREADY_EXISTS", client: "this passkey is already registered", browser: "This passkey is already registered." },
  // Sign-in with an OpenID Connect provider (issue 17). A state that is unknown, spent, expired,
  // or presented by another account than the one that started a link.
  FEDERATION_STATE_INVALID: { code: "UNAUTHENTICATED", client: "the sign-in with the provider is not valid or has expired; start again", browser: "That sign-in took too long or was already used. Please start again." },
  // An account has the provider's email address, but it is not verified here or at the provider.
  FEDERATION_LINK_REQUIRED: { code: "FAILED_PRECONDITION", client: "an account with this email address exists; sign in to it and link the provider from its security settings", browser: "An account with this email address already exists. Sign in to it as usual, then link this provider in Security." },
  // The provider's token endpoint refused the code (spent, expired, or not issued to this sign-in).
  FEDERATION_CODE_INVALID: { code: "UNAUTHENTICATED", client: "the provider did not accept the sign-in; start again", browser: "The provider did not confirm the sign-in. Please start again." },
  // The provider's ID token failed a check: issuer, audience, nonce, signature or expiry.
  ID_TOKEN_INVALID: { code: "UNAUTHENTICATED", client: "the provider's answer could not be verified", browser: "The provider's answer could not be verified. Please start again." },
  // The provider could not be reached (discovery, token endpoint): RetryInfo says when to retry.
  PROVIDER_UNAVAILABLE: { code: "UNAVAILABLE", client: "the sign-in provider is not reachable; retry later", browser: "The sign-in provider is not reachable right now. Please try again in a moment." },
  // FinishLinkIdentity for a provider identity that is linked to an account already.
  IDENTITY_ALREADY_LINKED: { code: "ALREADY_EXISTS", client: "this provider identity is linked to an account already", browser: "This provider account is already linked to an account." },
  IDENTITY_NOT_FOUND: { code: "NOT_FOUND", client: "no such linked identity", browser: "That provider account is not linked." },
  // UnlinkIdentity of the account's last way to sign in (no password, no other linked identity, no passkey); RemovePasskey likewise.
  LAST_SIGN_IN_METHOD: { code: "FAILED_PRECONDITION", client: "this is the account's last way to sign in", browser: "This is the last way to sign in to your account: set a password, link a provider or add another passkey first." },
} as const satisfies Readonly<Record<string, ErrorReasonSpec>>;

/** A stable machine code (google.rpc.ErrorInfo reason, UPPER_SNAKE). */
export type ErrorReason = keyof typeof ERROR_REASONS;

/** Whether a reason read off the wire is one this table declares (never an inherited key). */
export function isErrorReason(value: string): value is ErrorReason {
  return Object.hasOwn(ERROR_REASONS, value);
}
