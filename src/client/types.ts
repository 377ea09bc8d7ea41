// The client library's public types: what a backend gets back from verify() and what a route
// may require. Kept free of any server-side import (the Client part imports gen/ and libraries only).

/** Why a token is not active, as TokenService.VerifyToken names it (InactiveReason without its prefix). */
export const INACTIVE_REASONS = [
  "MALFORMED",
  "ALGORITHM_NOT_ALLOWED",
  "UNKNOWN_KEY",
  "BAD_SIGNATURE",
  "WRONG_TYPE",
  "EXPIRED",
  "NOT_YET_VALID",
  "WRONG_ISSUER",
  "WRONG_AUDIENCE",
  "SESSION_REVOKED",
  "TOKEN_REVOKED",
  "USER_DISABLED",
  "INVALID_CLAIMS",
] as const;

export type InactiveReason = (typeof INACTIVE_REASONS)[number];

interface PrincipalBase {
  /** `sub`: an account id, or `service:<name>`. */
  readonly subject: string;
  /** `jti`. */
  readonly tokenId: string;
  /** `iat`. */
  readonly issuedAt: Date;
  /** `exp`. */
  readonly expiresAt: Date;
}

/** A person, signed in through a session. */
export interface UserPrincipal extends PrincipalBase {
  readonly kind: "user";
  readonly userId: string;
  readonly sessionId: string;
  readonly role: string;
  /** Empty when the account has no username. */
  readonly username: string;
  /** Authentication methods of the session (RFC 8176: `pwd`, `otp`, `kba`, `mfa`, ...). */
  readonly amr: readonly string[];
  /**
   * When the session authenticated (`auth_time`); tokens without the claim fall back to `iat`,
   * which a refresh moves forward, so `maxAuthAge` is then measured from the last refresh.
   */
  readonly authTime: Date;
}

/** A service account, with a token from IssueServiceToken. */
export interface ServicePrincipal extends PrincipalBase {
  readonly kind: "service";
  /** The account's name (`client_id`). */
  readonly service: string;
  /** Its permissions (`scope`). */
  readonly scope: readonly string[];
}

export type Principal = UserPrincipal | ServicePrincipal;

/**
 * Why a request is refused:
 * - `missing_token`: no bearer token (401);
 * - `invalid_token`: not an active token of this identity service, see `inactiveReason` (401);
 * - `step_up_required`: valid, but the route needs a second factor or a more recent sign-in (401,
 *   RFC 9470 `insufficient_user_authentication`);
 * - `insufficient_role`: valid, but the role (or the kind of subject) is not allowed here (403);
 * - `unavailable`: the identity service cannot be reached and nothing local can decide (fails closed, 503).
 */
export type RefusalReason = "missing_token" | "invalid_token" | "step_up_required" | "insufficient_role" | "unavailable";

export interface Refusal {
  readonly ok: false;
  readonly reason: RefusalReason;
  /** Set when `reason` is `invalid_token`. */
  readonly inactiveReason?: InactiveReason;
  /** What the route asked for, for `step_up_required` (RFC 9470 `acr_values`/`max_age`). */
  readonly requiredAmr?: readonly string[];
  readonly maxAge?: number;
}

export interface Accepted {
  readonly ok: true;
  readonly principal: Principal;
}

export type VerifyResult = Accepted | Refusal;

/** What one route requires beyond an active token. */
export interface Policy {
  /**
   * Every one of these authentication methods (RFC 8176) must be in the session's `amr`. The service
   * adds `mfa` to every session completed with a second factor (with `otp` for TOTP, `kba` for a
   * backup code), so `["mfa"]` means "signed in with a second factor".
   */
  readonly requireAmr?: readonly string[];
  /** The session must have authenticated at most this many seconds ago (`auth_time`, else `iat`). */
  readonly maxAuthAge?: number;
  /** The person's role must be one of these. Service tokens have no role: refused when set. */
  readonly requireRole?: string | readonly string[];
  /** The audience the token must name, instead of the verifier's. */
  readonly audience?: string;
  /** Whether service tokens are accepted (default false: only people). */
  readonly allowServices?: boolean;
}
