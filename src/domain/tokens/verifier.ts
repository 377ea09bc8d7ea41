// Verification of access tokens on the hot path (VerifyToken runs on every request of every
// backend service). Two choices keep it at transport speed:
// - the Ed25519 signature is checked with node:crypto synchronously on the main thread (about
//   50 µs). jose's verify goes through WebCrypto, whose jobs queue on the libuv thread pool
//   behind argon2 hashes during a login storm;
// - results are cached per token string (bounded LRU), never past the token's expiry and
//   re-checked against the clock on every hit. Revocation is checked by the caller on every
//   call, so a cached signature never outlives a logout.
import { verify as verifySignature } from "node:crypto";
import { decodeJwt, decodeProtectedHeader, type JWTPayload } from "jose";
import { LRUCache } from "lru-cache";
import type { Clock } from "../clock.js";
import { SIGNING_ALG, type SigningKeys } from "./signing-keys.js";
import {
  ACCESS_TOKEN_TYPE,
  SERVICE_NAME,
  SERVICE_SUBJECT_PREFIX,
  type AccessClaims,
  type InactiveReason,
  type ServiceClaims,
  type TokenClaims,
  type TokenSettings,
  type Verification,
} from "./claims.js";


/** Clock skew tolerated between instances, in seconds. */
export const CLOCK_TOLERANCE_SEC = 5;
const MAX_TOKEN_LENGTH = 4096;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Failed verifications are remembered briefly so a flood of one bad token stays cheap. */
const NEGATIVE_TTL_MS = 60_000;

const inactive = (reason: InactiveReason): Verification => ({ active: false, reason });

export interface AccessTokenVerifier {
  /**
   * Signature, type, issuer, time and claims; `audience` is the one the token must name (this
   * service's own when omitted: a person's token never names another). Revocation is the caller's.
   */
  verify(token: string, audience?: string): Verification;
}

export interface VerifierOptions {
  readonly cacheSize?: number;
}

export function createAccessTokenVerifier(keys: SigningKeys, settings: TokenSettings, clock: Clock, options: VerifierOptions = {}): AccessTokenVerifier {
  const cache = new LRUCache<string, Verification>({ max: options.cacheSize ?? 10_000, ttlAutopurge: false });

  function timeCheck(claims: TokenClaims, nowSec: number): Verification {
    if (claims.exp <= nowSec - CLOCK_TOLERANCE_SEC) return inactive("EXPIRED");
    if (claims.iat > nowSec + CLOCK_TOLERANCE_SEC) return inactive("NOT_YET_VALID");
    return { active: true, claims };
  }

  function verifyUncached(token: string, nowSec: number): Verification {
    const parts = token.split(".");
    if (token.length > MAX_TOKEN_LENGTH || parts.length !== 3) return inactive("MALFORMED");
    let header: ReturnType<typeof decodeProtectedHeader>;
    let payload: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      payload = decodeJwt(token);
    } catch {
      return inactive("MALFORMED");
    }
    if (header.alg !== SIGNING_ALG) return inactive("ALGORITHM_NOT_ALLOWED");
    if (typeof header.typ !== "string" || header.typ.toLowerCase().replace(/^application\//, "") !== ACCESS_TOKEN_TYPE) {
      return inactive("WRONG_TYPE");
    }
    if (header.crit !== undefined) return inactive("MALFORMED");
    const key = typeof header.kid === "string" ? keys.publicKey(header.kid) : undefined;
    if (!key) return inactive("UNKNOWN_KEY");
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2]!, "base64url");
    // Node's decoder skips junk and padding; only the canonical encoding is this signature.
    if (signature.toString("base64url") !== parts[2]) return inactive("MALFORMED");
    if (!verifySignature(null, signed, key, signature)) return inactive("BAD_SIGNATURE");

    const claims = payload as JWTPayload & Record<string, unknown>;
    if (claims.iss !== settings.issuer) return inactive("WRONG_ISSUER");
    const read = typeof claims.sub === "string" && claims.sub.startsWith(SERVICE_SUBJECT_PREFIX) ? serviceClaims(claims) : userClaims(claims);
    if (typeof read === "string") return inactive(read);
    const { nbf } = claims;
    if (nbf !== undefined && typeof nbf !== "number") return inactive("INVALID_CLAIMS");
    if (nbf !== undefined && nbf > nowSec + CLOCK_TOLERANCE_SEC) return inactive("NOT_YET_VALID");
    return timeCheck(read, nowSec);
  }

  /** The registered claims every access token carries, or undefined when one is missing or mistyped. */
  function registered({ jti, iat, exp }: JWTPayload): { jti: string; iat: number; exp: number } | undefined {
    return typeof jti === "string" && typeof iat === "number" && typeof exp === "number" ? { jti, iat, exp } : undefined;
  }

  /** A person's token names this service's audience; checked once per token (the result is cached). */
  function userClaims(claims: JWTPayload & Record<string, unknown>): AccessClaims | InactiveReason {
    const { sub, sid, aud, role, username, amr, auth_time: authTime } = claims;
    if (aud !== settings.audience && !(Array.isArray(aud) && aud.includes(settings.audience))) return "WRONG_AUDIENCE";
    const times = registered(claims);
    if (
      !times ||
      typeof sub !== "string" || !UUID.test(sub) ||
      typeof sid !== "string" || !UUID.test(sid) ||
      typeof role !== "string" ||
      (authTime !== undefined && typeof authTime !== "number") ||
      (username !== undefined && typeof username !== "string") ||
      !Array.isArray(amr) || !amr.every((m) => typeof m === "string")
    ) {
      return "INVALID_CLAIMS";
    }
    return { kind: "user", sub, sid, ...times, authTime: (authTime as number | undefined) ?? times.iat, iss: settings.issuer, aud: settings.audience, role, username: (username as string | undefined) ?? "", amr: amr as string[] };
  }

  /** A service token names the audiences it was issued for; which one is expected is asked per call. */
  function serviceClaims(claims: JWTPayload & Record<string, unknown>): ServiceClaims | InactiveReason {
    const { sub, aud, client_id: service, scope } = claims;
    const audiences = typeof aud === "string" ? [aud] : aud;
    const times = registered(claims);
    if (
      !times ||
      typeof sub !== "string" || typeof service !== "string" || sub !== `${SERVICE_SUBJECT_PREFIX}${service}` || !SERVICE_NAME.test(service) ||
      !Array.isArray(audiences) || audiences.length === 0 || !audiences.every((a) => typeof a === "string" && a !== "") ||
      typeof scope !== "string" ||
      claims.sid !== undefined
    ) {
      return "INVALID_CLAIMS";
    }
    return { kind: "service", sub, service, ...times, iss: settings.issuer, aud: audiences as string[], scope: scope === "" ? [] : scope.split(" ") };
  }

  /** Whether `claims` name `audience` (this service's own when undefined). */
  function audienceCheck(result: Verification, audience: string | undefined): Verification {
    if (!result.active) return result;
    const { claims } = result;
    const expected = audience === undefined || audience === "" ? settings.audience : audience;
    if (claims.kind === "user") return expected === settings.audience ? result : inactive("WRONG_AUDIENCE");
    return claims.aud.includes(expected) ? result : inactive("WRONG_AUDIENCE");
  }

  return {
    verify(token, audience) {
      const nowMs = clock.now().getTime();
      const nowSec = nowMs / 1000;
      const cached = cache.get(token);
      if (cached) return cached.active ? audienceCheck(timeCheck(cached.claims, nowSec), audience) : cached;
      const result = verifyUncached(token, nowSec);
      if (result.active) {
        // Kept no longer than the token lives (by the wall clock; the clock is re-checked on hits).
        cache.set(token, result, { ttl: Math.max(1, (result.claims.exp + CLOCK_TOLERANCE_SEC) * 1000 - nowMs) });
      } else if (result.reason !== "NOT_YET_VALID" && result.reason !== "UNKNOWN_KEY") {
        // An unknown kid may be another instance's new key: not remembered (the key set reloads).
        cache.set(token, result, { ttl: NEGATIVE_TTL_MS });
      }
      return audienceCheck(result, audience);
    },
  };
}
