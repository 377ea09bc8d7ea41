// The configured OpenID Connect providers, through openid-client: discovery (lazily, on first
// use, then cached), the authorization URL, and the code exchange with every check OIDC Core
// asks of the ID token (issuer, audience, nonce, expiry, and the signature against the provider's
// JWKS: openid-client skips that for a token fetched over TLS unless asked, and we ask).
import * as oidc from "openid-client";
import type { OidcProviderConfig } from "../../config.js";
import type { Clock } from "../clock.js";
import { AppError } from "../errors.js";

/** What a provider says about the person, from the ID token (or, lacking email there, UserInfo). */
export interface ProviderClaims {
  readonly subject: string;
  readonly email: string | null;
  /** `email_verified` as the provider asserts it; false when absent. */
  readonly emailVerified: boolean;
  readonly name: string;
}

/** The secrets a started sign-in binds server-side (sealed in its state row). */
export interface AuthorizationSecrets {
  readonly nonce: string;
  readonly codeVerifier: string;
}

export interface OidcProviders {
  readonly list: readonly OidcProviderConfig[];
  get(id: string): OidcProviderConfig | undefined;
  /** The authorization URL with state, nonce and a PKCE S256 challenge. PROVIDER_UNAVAILABLE when discovery fails. */
  authorizationUrl(provider: OidcProviderConfig, redirectUri: string, state: string, secrets: AuthorizationSecrets): Promise<URL>;
  /**
   * Exchanges the code and verifies the ID token. PROVIDER_UNAVAILABLE when the provider cannot
   * be reached, FEDERATION_CODE_INVALID when it refuses the code, ID_TOKEN_INVALID when a check fails.
   */
  exchange(provider: OidcProviderConfig, callback: { redirectUri: string; state: string; code: string; iss: string }, secrets: AuthorizationSecrets): Promise<ProviderClaims>;
}

/** How long a failed discovery is answered from memory before the provider is asked again. */
export const DISCOVERY_RETRY_MS = 5_000;
const REQUEST_TIMEOUT_SEC = 10;

function insecure(issuer: string): boolean {
  return new URL(issuer).protocol === "http:";
}

function unavailable(provider: OidcProviderConfig, retryAfterMs: number, cause: unknown): AppError {
  return new AppError("PROVIDER_UNAVAILABLE", `provider ${provider.id} (${provider.issuer}) unreachable: ${(cause as Error)?.message ?? String(cause)}`, { retryAfterMs, cause });
}

/** Whether `err` says the provider could not be reached (rather than answered something wrong). */
function unreachable(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.name === "TimeoutError" || e.name === "AbortError" || (e instanceof TypeError && /fetch failed/i.test(e.message))) return true;
    if ("code" in e && typeof e.code === "string" && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|UND_ERR_\w+)$/.test(e.code)) return true;
  }
  return false;
}

export function createOidcProviders(list: readonly OidcProviderConfig[], clock: Clock): OidcProviders {
  const byId = new Map(list.map((p) => [p.id, p]));
  // One discovery per provider at a time; a failure is kept DISCOVERY_RETRY_MS, then forgotten.
  const discovered = new Map<string, Promise<oidc.Configuration>>();
  const failed = new Map<string, { at: number; error: unknown }>();

  function configuration(provider: OidcProviderConfig): Promise<oidc.Configuration> {
    const failure = failed.get(provider.id);
    if (failure) {
      const waitMs = failure.at + DISCOVERY_RETRY_MS - clock.now().getTime();
      if (waitMs > 0) return Promise.reject(unavailable(provider, waitMs, failure.error));
      failed.delete(provider.id);
    }
    let pending = discovered.get(provider.id);
    if (!pending) {
      const auth = provider.clientSecret === "" ? oidc.None() : oidc.ClientSecretBasic(provider.clientSecret);
      pending = oidc
        .discovery(new URL(provider.issuer), provider.clientId, undefined, auth, {
          execute: insecure(provider.issuer) ? [oidc.allowInsecureRequests] : [],
          timeout: REQUEST_TIMEOUT_SEC,
        })
        .then((config) => {
          // Verify ID token signatures with the provider's JWKS (OIDC Core 3.1.3.7 lets a client
          // skip it over TLS; a compromised or mixed-up token endpoint is what it catches).
          oidc.enableNonRepudiationChecks(config);
          return config;
        })
        .catch((err: unknown) => {
          discovered.delete(provider.id);
          failed.set(provider.id, { at: clock.now().getTime(), error: err });
          throw unavailable(provider, DISCOVERY_RETRY_MS, err);
        });
      discovered.set(provider.id, pending);
    }
    return pending;
  }

  return {
    list,
    get: (id) => byId.get(id),

    async authorizationUrl(provider, redirectUri, state, secrets) {
      const config = await configuration(provider);
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: provider.scopes,
        response_type: "code",
        state,
        nonce: secrets.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(secrets.codeVerifier),
        code_challenge_method: "S256",
      });
    },

    async exchange(provider, callback, secrets) {
      const config = await configuration(provider);
      const url = new URL(callback.redirectUri);
      url.searchParams.set("code", callback.code);
      url.searchParams.set("state", callback.state);
      if (callback.iss !== "") url.searchParams.set("iss", callback.iss);
      let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
      try {
        tokens = await oidc.authorizationCodeGrant(config, url, {
          expectedState: callback.state,
          expectedNonce: secrets.nonce,
          pkceCodeVerifier: secrets.codeVerifier,
          idTokenExpected: true,
        });
      } catch (err) {
        if (unreachable(err)) throw unavailable(provider, 0, err);
        // The token endpoint's own refusal (invalid_grant: a code spent, expired, or not issued
        // for this verifier) differs from a token that fails our checks.
        if (err instanceof oidc.ResponseBodyError) {
          throw new AppError("FEDERATION_CODE_INVALID", `provider ${provider.id} refused the code: ${err.error}`, { cause: err });
        }
        throw new AppError("ID_TOKEN_INVALID", `provider ${provider.id}: ${(err as Error).message}`, { cause: err });
      }
      const idClaims = tokens.claims();
      if (!idClaims) throw new AppError("ID_TOKEN_INVALID", `provider ${provider.id} answered no ID token`);
      let source: Record<string, unknown> = idClaims;
      // Providers that keep scope claims out of the ID token (OIDC Core 5.4) answer them at UserInfo.
      if (idClaims.email === undefined && config.serverMetadata().userinfo_endpoint) {
        try {
          source = { ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)), sub: idClaims.sub };
        } catch (err) {
          if (unreachable(err)) throw unavailable(provider, 0, err);
          throw new AppError("ID_TOKEN_INVALID", `provider ${provider.id} UserInfo: ${(err as Error).message}`, { cause: err });
        }
      }
      const email = typeof source.email === "string" && source.email !== "" ? source.email : null;
      const verified = source.email_verified === true || source.email_verified === "true";
      const name = typeof source.name === "string" ? source.name : "";
      return { subject: idClaims.sub, email, emailVerified: email !== null && verified, name };
    },
  };
}
