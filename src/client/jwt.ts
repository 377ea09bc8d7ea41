// The client's own access-token check, the same checks as the service's verifier
// (src/domain/tokens/verifier.ts, which the client may not import): EdDSA and `at+jwt` pinned,
// a known `kid`, the canonical base64url signature, issuer, audience, claim types, and a 5 s
// clock tolerance. Ed25519 is verified with node:crypto from the JWK (about 50 µs, synchronous).
import { createPublicKey, verify as verifySignature, type KeyObject } from "node:crypto";
import type { InactiveReason, Principal } from "./types.js";

export const CLOCK_TOLERANCE_SEC = 5;
const MAX_TOKEN_LENGTH = 4096;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SERVICE_PREFIX = "service:";
const SERVICE_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** The public fields of a JWK as the service streams them. */
export interface PublicJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly kid: string;
}

/** An Ed25519 public key from its JWK, or undefined when it is not one. */
export function importKey(jwk: PublicJwk): KeyObject | undefined {
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.kid) return undefined;
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
  } catch {
    return undefined;
  }
}

export type Checked = { readonly active: true; readonly principal: Principal } | { readonly active: false; readonly reason: InactiveReason };

const inactive = (reason: InactiveReason): Checked => ({ active: false, reason });

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The payload of a compact JWS, unverified (for `auth_time` of a token the service has verified). */
export function unverifiedPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split(".");
  return parts.length === 3 ? decodeJson(parts[1]!) : undefined;
}

/** `auth_time` when present and a number, else `iat`. */
export function authTimeOf(payload: Record<string, unknown> | undefined, iat: number): Date {
  const authTime = payload?.auth_time;
  return new Date((typeof authTime === "number" && Number.isFinite(authTime) ? authTime : iat) * 1000);
}

export interface LocalCheckSettings {
  readonly issuer: string;
  /** The audience the token must name. */
  readonly audience: string;
  readonly key: (kid: string) => KeyObject | undefined;
  readonly nowMs: number;
}

/** Signature, type, issuer, audience, time and claims; revocation is the caller's. Never throws. */
export function checkToken(token: string, settings: LocalCheckSettings): Checked {
  try {
    return check(token, settings);
  } catch {
    // Nothing below should throw on any input; if node:crypto ever does, the token is not accepted.
    return inactive("MALFORMED");
  }
}

function check(token: string, settings: LocalCheckSettings): Checked {
  const parts = token.split(".");
  if (token.length > MAX_TOKEN_LENGTH || parts.length !== 3) return inactive("MALFORMED");
  const header = decodeJson(parts[0]!);
  const claims = decodeJson(parts[1]!);
  if (!header || !claims) return inactive("MALFORMED");
  if (header.alg !== "EdDSA") return inactive("ALGORITHM_NOT_ALLOWED");
  if (typeof header.typ !== "string" || header.typ.toLowerCase().replace(/^application\//, "") !== "at+jwt") return inactive("WRONG_TYPE");
  if (header.crit !== undefined) return inactive("MALFORMED");
  const key = typeof header.kid === "string" ? settings.key(header.kid) : undefined;
  if (!key) return inactive("UNKNOWN_KEY");
  const signature = Buffer.from(parts[2]!, "base64url");
  // Node's decoder skips junk and padding; only the canonical encoding is this signature.
  if (signature.toString("base64url") !== parts[2]) return inactive("MALFORMED");
  if (!verifySignature(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, signature)) return inactive("BAD_SIGNATURE");

  if (claims.iss !== settings.issuer) return inactive("WRONG_ISSUER");
  const { sub, jti, iat, exp, nbf, aud } = claims;
  if (typeof sub !== "string" || typeof jti !== "string" || typeof iat !== "number" || typeof exp !== "number") return inactive("INVALID_CLAIMS");
  if (nbf !== undefined && typeof nbf !== "number") return inactive("INVALID_CLAIMS");
  const audiences = typeof aud === "string" ? [aud] : aud;
  if (!Array.isArray(audiences) || !audiences.every((a) => typeof a === "string")) return inactive("INVALID_CLAIMS");

  const base = { subject: sub, tokenId: jti, issuedAt: new Date(Math.round(iat * 1000)), expiresAt: new Date(exp * 1000) };
  let principal: Principal;
  if (sub.startsWith(SERVICE_PREFIX)) {
    const { client_id: service, scope } = claims;
    if (
      typeof service !== "string" || sub !== `${SERVICE_PREFIX}${service}` || !SERVICE_NAME.test(service) ||
      audiences.length === 0 || audiences.some((a) => a === "") || typeof scope !== "string" || claims.sid !== undefined
    ) {
      return inactive("INVALID_CLAIMS");
    }
    principal = { kind: "service", ...base, service, scope: scope === "" ? [] : scope.split(" ") };
  } else {
    const { sid, role, username, amr } = claims;
    if (
      !UUID.test(sub) || typeof sid !== "string" || !UUID.test(sid) || typeof role !== "string" ||
      (username !== undefined && typeof username !== "string") ||
      !Array.isArray(amr) || !amr.every((m) => typeof m === "string") ||
      (claims.auth_time !== undefined && typeof claims.auth_time !== "number")
    ) {
      return inactive("INVALID_CLAIMS");
    }
    principal = {
      kind: "user", ...base, userId: sub, sessionId: sid, role, username: (username as string | undefined) ?? "",
      amr: amr as string[], authTime: authTimeOf(claims, iat),
    };
  }
  if (!audiences.includes(settings.audience)) return inactive("WRONG_AUDIENCE");
  const nowSec = settings.nowMs / 1000;
  if (exp <= nowSec - CLOCK_TOLERANCE_SEC) return inactive("EXPIRED");
  if (iat > nowSec + CLOCK_TOLERANCE_SEC || (nbf !== undefined && (nbf as number) > nowSec + CLOCK_TOLERANCE_SEC)) return inactive("NOT_YET_VALID");
  return { active: true, principal };
}
