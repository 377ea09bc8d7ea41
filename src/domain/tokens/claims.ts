// What an access token claims and what verifying one answers: shared by access-tokens.ts (which
// issues) and verifier.ts (which verifies), so that neither imports the other's module for them.

/** The JWT `typ` of an access token (RFC 9068). */
export const ACCESS_TOKEN_TYPE = "at+jwt";

export type InactiveReason =
  | "MALFORMED"
  | "ALGORITHM_NOT_ALLOWED"
  | "UNKNOWN_KEY"
  | "BAD_SIGNATURE"
  | "WRONG_TYPE"
  | "EXPIRED"
  | "NOT_YET_VALID"
  | "WRONG_ISSUER"
  | "WRONG_AUDIENCE"
  | "SESSION_REVOKED"
  | "TOKEN_REVOKED"
  | "USER_DISABLED"
  | "INVALID_CLAIMS"
  | "STEP_UP_REQUIRED"
  | "ROLE_NOT_ALLOWED";

/** The claims of a person's access token (issued at sign-in and refresh). */
export interface AccessClaims {
  readonly kind: "user";
  readonly sub: string;
  readonly sid: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  /** When the session signed in (seconds); `iat` for tokens issued before the claim existed. */
  readonly authTime: number;
  readonly iss: string;
  readonly aud: string;
  readonly role: string;
  readonly username: string;
  readonly amr: readonly string[];
}

/** A service account's name: it becomes `sub` (`service:<name>`) of its tokens, so it never changes. */
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** `sub` of a service token: this prefix and the service account's name. */
export const SERVICE_SUBJECT_PREFIX = "service:";

/**
 * The claims of a service token (TokenService.IssueServiceToken; RFC 9068's client-credentials
 * profile): no session, no person; the account's permissions as `scope`.
 */
export interface ServiceClaims {
  readonly kind: "service";
  /** `service:<name>`. */
  readonly sub: string;
  /** The service account's name (`client_id`). */
  readonly service: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly iss: string;
  /** Every audience the token names. */
  readonly aud: readonly string[];
  readonly scope: readonly string[];
}

export type TokenClaims = AccessClaims | ServiceClaims;

export type Verification =
  | { readonly active: true; readonly claims: TokenClaims }
  | { readonly active: false; readonly reason: InactiveReason };

export interface TokenSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSec: number;
}
