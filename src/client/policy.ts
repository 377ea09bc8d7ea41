// A route's requirements applied to a verified principal: one place decides "this action needs
// a second factor" (step_up_required) apart from "not this role" (insufficient_role).
import type { Policy, Principal, VerifyResult } from "./types.js";

export function applyPolicy(principal: Principal, policy: Policy | undefined, nowMs: number): VerifyResult {
  const requireAmr = policy?.requireAmr ?? [];
  const maxAuthAge = policy?.maxAuthAge;
  const roles: readonly string[] = typeof policy?.requireRole === "string" ? [policy.requireRole] : (policy?.requireRole ?? []);
  if (principal.kind === "service") {
    // A service has no session, second factor or role: it meets none of those requirements, and
    // cannot step up either, so it is told "not here" (403) rather than "sign in again".
    const personOnly = requireAmr.length > 0 || maxAuthAge !== undefined || roles.length > 0;
    return policy?.allowServices && !personOnly ? { ok: true, principal } : { ok: false, reason: "insufficient_role" };
  }
  const maxAge = maxAuthAge !== undefined ? { maxAge: maxAuthAge } : {};
  if (!requireAmr.every((m) => principal.amr.includes(m))) return { ok: false, reason: "step_up_required", requiredAmr: requireAmr, ...maxAge };
  if (maxAuthAge !== undefined && nowMs - principal.authTime.getTime() > maxAuthAge * 1000) return { ok: false, reason: "step_up_required", maxAge: maxAuthAge };
  if (roles.length > 0 && !roles.includes(principal.role)) return { ok: false, reason: "insufficient_role" };
  return { ok: true, principal };
}
