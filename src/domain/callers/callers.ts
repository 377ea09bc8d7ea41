// Who is calling: a person with an access token, or a backend service with a service key.
import type { Revocations } from "../tokens/revocation.js";
import type { AccessTokens } from "../tokens/access-tokens.js";
import type { AccessClaims, Verification } from "../tokens/claims.js";
import { AppError } from "../errors.js";
import { timingSafeEqual } from "node:crypto";

export interface Caller {
  readonly userId: string;
  readonly sessionId: string;
  readonly amr: readonly string[];
  readonly claims: AccessClaims;
}

export interface Callers {
  /**
   * Full introspection: signature, claims and revocation. `audience`: the one the token must name
   * (this service's own by default; see AccessTokenVerifier.verify).
   */
  introspect(token: string, audience?: string): Promise<Verification>;
  /** The person behind a bearer token; UNAUTHENTICATED when there is none or it is not active. */
  authenticate(bearer: string | undefined): Promise<Caller>;
  /**
   * Admits a backend service to an internal RPC needing `permission`, or throws
   * (SERVICE_KEY_REQUIRED, SERVICE_KEY_INVALID). `peerIsLoopback` matters only without a key.
   */
  authorizeService(serviceKey: string | undefined, permission: string, peerIsLoopback: boolean): void;
}

export interface CallerSettings {
  readonly serviceKeys: readonly string[];
  /** Development mode lets loopback callers skip the service key. */
  readonly allowLoopbackWithoutKey: boolean;
}

export function createCallers(accessTokens: AccessTokens, revocations: Revocations, settings: CallerSettings): Callers {
  // Runs on every VerifyToken: compare bytes directly (constant time for equal lengths; a
  // key's length is not the secret), no hashing per call.
  const serviceKeys = settings.serviceKeys.map((key) => Buffer.from(key));
  async function introspect(token: string, audience?: string): Promise<Verification> {
    const verification = await accessTokens.verify(token, audience);
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
      const verification = await introspect(bearer);
      if (!verification.active) {
        throw new AppError("ACCESS_TOKEN_INVALID", `access token inactive: ${verification.reason}`);
      }
      const { claims } = verification;
      // A service token names no person: it cannot act for one.
      if (claims.kind !== "user") throw new AppError("ACCESS_TOKEN_INVALID", "a service token cannot act for a person");
      return { userId: claims.sub, sessionId: claims.sid, amr: claims.amr, claims };
    },
    // SERVICE_KEYS are nameless bootstrap keys: each holds every permission, so `permission` is
    // not consulted until service accounts (named, with permissions) exist.
    authorizeService(serviceKey, _permission, peerIsLoopback) {
      if (serviceKey === undefined || serviceKey === "") {
        if (settings.allowLoopbackWithoutKey && peerIsLoopback) return;
        throw new AppError("SERVICE_KEY_REQUIRED", "internal RPC called without x-service-key");
      }
      // Compare against every key so timing does not reveal which one nearly matched.
      const presented = Buffer.from(serviceKey);
      let match = false;
      for (const key of serviceKeys) match = (key.length === presented.length && timingSafeEqual(key, presented)) || match;
      if (!match) throw new AppError("SERVICE_KEY_INVALID", "unknown x-service-key");
    },
  };
}
