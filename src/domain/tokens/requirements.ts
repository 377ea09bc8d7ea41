// What a backend may ask of a token beyond being active (VerifyToken's require_amr,
// max_auth_age, require_role; the client library's per-route policy has the same three): a
// second factor or a recent sign-in is a step up the person can take, a role is not.
import { Violations } from "../errors.js";
import type { InactiveReason, TokenClaims } from "./claims.js";

export interface TokenRequirements {
  /** Every one of these must be among the session's `amr`. */
  readonly amr: readonly string[];
  /** The session signed in at most this long ago (`auth_time`), in seconds. */
  readonly maxAuthAgeSec?: number;
  /** The account has one of these roles. */
  readonly roles: readonly string[];
}

const MAX_ENTRIES = 16;
const MAX_ENTRY_LENGTH = 64;

/** Checks the requirements a caller sent; INVALID_ARGUMENT with a violation per bad field. */
export function checkRequirements(requirements: TokenRequirements): void {
  const violations = new Violations();
  for (const [field, values] of [["require_amr", requirements.amr], ["require_role", requirements.roles]] as const) {
    if (values.length > MAX_ENTRIES) violations.add(field, "TOO_MANY", `at most ${MAX_ENTRIES} entries`);
    else if (values.some((v) => v === "" || v.length > MAX_ENTRY_LENGTH)) violations.add(field, "INVALID", `entries of 1 to ${MAX_ENTRY_LENGTH} characters`);
  }
  if (requirements.maxAuthAgeSec !== undefined && !(requirements.maxAuthAgeSec >= 0)) {
    violations.add("max_auth_age", "OUT_OF_RANGE", "must not be negative");
  }
  violations.throwIfAny();
}

/**
 * Why an active token does not meet `requirements`, if it does not. A service token has no
 * session and no role: it meets no amr, authentication-age or role requirement.
 */
export function unmetRequirement(claims: TokenClaims, requirements: TokenRequirements, nowSec: number): InactiveReason | undefined {
  const { amr, maxAuthAgeSec, roles } = requirements;
  if (amr.length > 0 || maxAuthAgeSec !== undefined) {
    if (claims.kind !== "user") return "STEP_UP_REQUIRED";
    if (!amr.every((method) => claims.amr.includes(method))) return "STEP_UP_REQUIRED";
    if (maxAuthAgeSec !== undefined && nowSec - claims.authTime > maxAuthAgeSec) return "STEP_UP_REQUIRED";
  }
  if (roles.length > 0 && (claims.kind !== "user" || !roles.includes(claims.role))) return "ROLE_NOT_ALLOWED";
  return undefined;
}
