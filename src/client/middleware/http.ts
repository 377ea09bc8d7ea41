// What every middleware shares: the bearer token of a request and how a refusal is answered
// (RFC 6750 and RFC 9470 challenges; the gRPC code of each HTTP status).
import type { Refusal } from "../types.js";

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), or undefined. */
export function bearerToken(authorization: string | readonly string[] | undefined): string | undefined {
  const value = Array.isArray(authorization) ? authorization[0] : authorization;
  if (typeof value !== "string") return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(value);
  return match?.[1];
}

/** 401 for a missing, invalid or insufficiently authenticated token, 403 for a role, 503 when nothing can decide. */
export function httpStatus(refusal: Refusal): 401 | 403 | 503 {
  switch (refusal.reason) {
    case "insufficient_role":
      return 403;
    case "unavailable":
      return 503;
    default:
      return 401;
  }
}

/** gRPC status codes of httpStatus(): UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE. */
export function grpcCode(refusal: Refusal): 16 | 7 | 14 {
  const status = httpStatus(refusal);
  return status === 401 ? 16 : status === 403 ? 7 : 14;
}

/**
 * The `WWW-Authenticate` value of a refusal, or undefined (`unavailable` is not the caller's to
 * fix). A request without a token gets a bare challenge (RFC 6750 §3.1: no error code then).
 */
export function challenge(refusal: Refusal, realm?: string): string | undefined {
  const params: string[] = realm ? [`realm="${realm.replace(/["\\]/g, "")}"`] : [];
  switch (refusal.reason) {
    case "missing_token":
      break;
    case "invalid_token":
      params.push('error="invalid_token"');
      break;
    case "step_up_required":
      // RFC 9470: the client obtains a new token with a second factor or a fresh sign-in.
      params.push('error="insufficient_user_authentication"');
      params.push(`error_description="${refusal.requiredAmr ? `authentication with ${refusal.requiredAmr.join(" and ").replace(/[^A-Za-z0-9 ._-]/g, "")} is required` : "a more recent authentication is required"}"`);
      if (refusal.maxAge !== undefined) params.push(`max_age=${refusal.maxAge}`);
      break;
    case "insufficient_role":
      params.push('error="insufficient_scope"');
      break;
    case "unavailable":
      return undefined;
  }
  return params.length === 0 ? "Bearer" : `Bearer ${params.join(", ")}`;
}

/** The JSON body of an HTTP refusal. */
export function refusalBody(refusal: Refusal): string {
  return JSON.stringify({ error: refusal.reason, ...(refusal.inactiveReason && { inactive_reason: refusal.inactiveReason }) });
}

/** A route's policy: a per-route entry (false: no token needed), else the default. */
export function policyFor<P>(key: string, policies: Readonly<Record<string, P | false>> | undefined, fallback: P | undefined): P | undefined | false {
  const own = policies && Object.hasOwn(policies, key) ? policies[key] : undefined;
  return own === undefined ? fallback : own;
}
