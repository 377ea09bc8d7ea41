// A route's requirements applied to a verified principal: one place decides "this action needs
// a second factor" (step_up_required) apart from "not this role" (insufficient_role).
import type { Policy, Principal, VerifyResult } from "./types.js";

export function applyPolicy(principal: Principal, policy: Policy | undefined, nowMs: number): VerifyResult {
  if (!policy) return principal.kind === "service" ? { ok: false, reason: "insufficient_role" } : { ok: true, principal };
  if (principal.kind === "service") {
    // A service has no session, second factor or role: a route asking for one is for people.
    const personOnly = policy.requireAmr !== undefined || policy.maxAuthAge !== undefined || policy.requireRole !== undefined;
    return policy.allowServices && !personOnly ? { ok: true, principal } : { ok: false, reason: "insufficient_role" };
  }
  const { requireAmr, maxAuthAge } = policy;
  if (requireAmr && requireAmr.length > 0 && !requireAmr.some((m) => principal.amr.includes(m))) {
    return { ok: false, reason: "step_up_required", requiredAmr: requireAmr, ...(maxAuthAge !== undefined && { maxAge: maxAuthAge }) };
  }
  if (maxAuthAge !== undefined && nowMs - principal.authTime.getTime() > maxAuthAge * 1000) {
    return { ok: false, reason: "step_up_required", maxAge: maxAuthAge, ...(requireAmr && { requiredAmr: requireAmr }) };
  }
  if (policy.requireRole !== undefined) {
    const roles: readonly string[] = typeof policy.requireRole === "string" ? [policy.requireRole] : policy.requireRole;
    if (!roles.includes(principal.role)) return { ok: false, reason: "insufficient_role" };
  }
  return { ok: true, principal };
}
