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
  | "INVALID_CLAIMS";

export interface AccessClaims {
  readonly sub: string;
  readonly sid: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly iss: string;
  readonly aud: string;
  readonly role: string;
  readonly username: string;
  readonly amr: readonly string[];
}

export type Verification =
  | { readonly active: true; readonly claims: AccessClaims }
  | { readonly active: false; readonly reason: InactiveReason };

export interface TokenSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSec: number;
}
