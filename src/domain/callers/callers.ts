// Who is calling: a person with an access token, or a backend service (a service account or a
// bootstrap caller; directory.ts resolves them, service-accounts.ts manages them).
import type { Revocations } from "../tokens/revocation.js";
import type { AccessTokens } from "../tokens/access-tokens.js";
import type { AccessClaims, Verification } from "../tokens/claims.js";
import { AppError } from "../errors.js";
import type { CertificateIdentity, ServiceDirectory } from "./directory.js";

export interface Caller {
  readonly userId: string;
  readonly sessionId: string;
  readonly amr: readonly string[];
  readonly claims: AccessClaims;
}

/**
 * A backend service calling: a service account (by API key or client certificate) or a
 * bootstrap caller from SERVICE_KEYS. Resolved once per call by the call policy
 * (src/services/policy.ts) and read with serviceCaller(ctx) (src/services/call.ts).
 */
export interface ServiceCaller {
  /** The account name (`billing`): the `sub` of its service tokens is `service:<name>`. */
  readonly name: string;
  readonly permissions: ReadonlySet<string>;
  /** The audiences it may request service tokens for; none for bootstrap callers. */
  readonly audiences: readonly string[];
  readonly via: "key" | "certificate" | "bootstrap";
}

export interface Callers {
  /**
   * Full introspection: signature, claims and revocation. `audience`: the one the token must name
   * (this service's own by default; see AccessTokenVerifier.verify). Synchronous, so that
   * VerifyToken answers without a promise (the signing keys and revocations are in memory).
   */
  introspect(token: string, audience?: string): Verification;
  /** The person behind a bearer token; UNAUTHENTICATED when there is none or it is not active. */
  authenticate(bearer: string | undefined): Promise<Caller>;
  /** The service a presented key names; throws SERVICE_KEY_INVALID when it names none that may call. */
  serviceByKey(key: string): ServiceCaller;
  /** The service a verified client certificate names, if any (SERVICE_KEY_INVALID for a disabled account). */
  serviceByCertificate(certificate: CertificateIdentity): ServiceCaller | undefined;
  /** Development mode lets loopback callers reach internal RPCs without a credential. */
  readonly allowLoopbackWithoutKey: boolean;
}

export interface CallerSettings {
  /** Development mode lets loopback callers skip the service key. */
  readonly allowLoopbackWithoutKey: boolean;
}

export function createCallers(accessTokens: AccessTokens, revocations: Revocations, directory: ServiceDirectory, settings: CallerSettings): Callers {
  function introspect(token: string, audience?: string): Verification {
    const verification = accessTokens.verify(token, audience);
    if (!verification.active) return verification;
    const reason = revocations.check(verification.claims);
    return reason === undefined ? verification : { active: false, reason };
  }

  return {
    introspect,
    async authenticate(bearer) {
      if (bearer === undefined || bearer === "") {
        throw new AppError("AUTHENTICATION_REQUIRED", "no bearer token");
      }
      const verification = introspect(bearer);
      if (!verification.active) {
        throw new AppError("ACCESS_TOKEN_INVALID", `access token inactive: ${verification.reason}`);
      }
      const { claims } = verification;
      // A service token names no person: it cannot act for one.
      if (claims.kind !== "user") throw new AppError("ACCESS_TOKEN_INVALID", "a service token cannot act for a person");
      return { userId: claims.sub, sessionId: claims.sid, amr: claims.amr, claims };
    },
    serviceByKey: (key) => directory.byKey(key),
    serviceByCertificate: (certificate) => directory.byCertificate(certificate),
    allowLoopbackWithoutKey: settings.allowLoopbackWithoutKey,
  };
}
