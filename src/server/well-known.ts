// Server metadata for resource servers in any language (issue 13, item 5): RFC 8414's
// /.well-known/oauth-authorization-server and the same document at OpenID Connect Discovery's
// /.well-known/openid-configuration, where most libraries look. It describes what a service that
// receives this issuer's access tokens needs: the issuer, the keys, the introspection endpoint
// and the algorithm. Sign-in itself is gRPC (AuthService), not an OAuth authorization endpoint,
// so none is advertised.

export const DISCOVERY_PATHS: ReadonlySet<string> = new Set(["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]);

export interface ServerMetadata {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly introspection_endpoint: string;
  readonly introspection_endpoint_auth_methods_supported: readonly string[];
  readonly token_endpoint_auth_methods_supported: readonly string[];
  readonly id_token_signing_alg_values_supported: readonly string[];
  readonly subject_types_supported: readonly string[];
  readonly response_types_supported: readonly string[];
  readonly grant_types_supported: readonly string[];
  readonly claims_supported: readonly string[];
}

/**
 * The document, built once: `issuer` is TOKEN_ISSUER (what tokens carry), `baseUrl` where the
 * gateway is reached (PUBLIC_URL, else the issuer). Never derived from a request's Host header,
 * which a client chooses (a cache would then serve someone else's jwks_uri).
 */
export function serverMetadata(issuer: string, baseUrl: string): ServerMetadata {
  const base = baseUrl.replace(/\/+$/, "");
  return {
    issuer,
    jwks_uri: `${base}/.well-known/jwks.json`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    // A service account's name and key (client_secret_basic), or the key alone as a bearer credential.
    introspection_endpoint_auth_methods_supported: ["client_secret_basic"],
    token_endpoint_auth_methods_supported: [],
    // Access tokens: JWTs signed with Ed25519 (`typ: at+jwt`, RFC 9068).
    id_token_signing_alg_values_supported: ["EdDSA"],
    subject_types_supported: ["public"],
    response_types_supported: [],
    grant_types_supported: [],
    claims_supported: ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "role", "username", "amr", "client_id", "scope"],
  };
}
