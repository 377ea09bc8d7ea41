// What a proxy's authorization answer carries, the same on both surfaces that give one: forward
// authentication over HTTP on the gateway (GET /authz, src/server/http-auth.ts) and Envoy's
// external authorization on the gRPC port (envoy-authz-service.ts). The proxy copies the
// principal's headers onto the upstream request; the upstream trusts them because the proxy
// strips any copy the client sent.
import type { TokenClaims } from "../domain/tokens/claims.js";

/** The permission a proxy asking for forward authentication holds (either surface). */
export const AUTHZ_PERMISSION = "authz.check";

/** Request headers an admitting answer sets; the proxy copies them onto the upstream request. */
export const IDENTITY_HEADERS = {
  subjectKind: "x-identity-subject-kind",
  userId: "x-identity-user-id",
  sessionId: "x-identity-session-id",
  role: "x-identity-role",
  amr: "x-identity-amr",
  service: "x-identity-service",
  scope: "x-identity-scope",
} as const;

/** Every identity header, lower-case: each one a client sent is removed before the upstream sees it. */
export const IDENTITY_HEADER_NAMES: readonly string[] = Object.values(IDENTITY_HEADERS);

/** The identity headers of an active token's principal: a person's, or a service's. */
export function identityHeaders(claims: TokenClaims): Record<string, string> {
  return claims.kind === "user"
    ? {
        [IDENTITY_HEADERS.subjectKind]: "user",
        [IDENTITY_HEADERS.userId]: claims.sub,
        [IDENTITY_HEADERS.sessionId]: claims.sid,
        [IDENTITY_HEADERS.role]: claims.role,
        [IDENTITY_HEADERS.amr]: claims.amr.join(","),
      }
    : { [IDENTITY_HEADERS.subjectKind]: "service", [IDENTITY_HEADERS.service]: claims.service, [IDENTITY_HEADERS.scope]: claims.scope.join(" ") };
}

/** RFC 6750 §3: the challenge of a request without a bearer token (§3.1: no error code then). */
export const BEARER_CHALLENGE = 'Bearer realm="identity"';
/** RFC 6750 §3.1: the challenge of a request whose bearer token is not active. */
export const INVALID_TOKEN_CHALLENGE = 'Bearer realm="identity", error="invalid_token"';
