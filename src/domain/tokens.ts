// Access tokens: JWTs signed with EdDSA, `typ: at+jwt` (RFC 9068). Verification pins the
// algorithm, type, issuer and audience, and names the reason when a token is not active.
import { randomUUID } from "node:crypto";
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose";
import type { Clock } from "./clock.js";
import { SIGNING_ALG, type SigningKeys } from "./signing-keys.js";

export const ACCESS_TOKEN_TYPE = "at+jwt";

export type InactiveReason =
  | "MALFORMED"
  | "ALGORITHM_NOT_ALLOWED"
  | "UNKNOWN_KEY"
  | "BAD_SIGNATURE"
  | "WRONG_TYPE"
  | "EXPIRED"
  | "NOT_YET_VALID"
  | "WRONG_ISSUER"
  | "WRONG_AUDIENCE"
  | "SESSION_REVOKED"
  | "TOKEN_REVOKED"
  | "USER_DISABLED"
  | "INVALID_CLAIMS";

export interface AccessClaims {
  readonly sub: string;
  readonly sid: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly iss: string;
  readonly aud: string;
  readonly role: string;
  readonly username: string;
  readonly amr: readonly string[];
}

export type Verification =
  | { readonly active: true; readonly claims: AccessClaims }
  | { readonly active: false; readonly reason: InactiveReason };

export interface TokenSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSec: number;
}

export interface AccessTokenSubject {
  readonly userId: string;
  readonly sessionId: string;
  readonly role: string;
  readonly username: string | null;
  readonly amr: readonly string[];
}

export interface IssuedAccessToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export interface AccessTokens {
  issue(subject: AccessTokenSubject): Promise<IssuedAccessToken>;
  /** Checks signature and claims only; revocation is checked by the caller. */
  verify(token: string): Promise<Verification>;
}

/** Clock skew tolerated between instances, in seconds. */
const CLOCK_TOLERANCE_SEC = 5;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const inactive = (reason: InactiveReason): Verification => ({ active: false, reason });

export function createAccessTokens(keys: SigningKeys, settings: TokenSettings, clock: Clock): AccessTokens {
  return {
    async issue(subject) {
      const { kid, privateKey } = keys.current();
      const iat = Math.floor(clock.now().getTime() / 1000);
      const exp = iat + settings.accessTokenTtlSec;
      const token = await new SignJWT({
        sid: subject.sessionId,
        role: subject.role,
        ...(subject.username ? { username: subject.username } : {}),
        amr: [...subject.amr],
      })
        .setProtectedHeader({ alg: SIGNING_ALG, typ: ACCESS_TOKEN_TYPE, kid })
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setSubject(subject.userId)
        .setJti(randomUUID())
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .sign(privateKey);
      return { token, expiresAt: new Date(exp * 1000) };
    },

    async verify(token) {
      if (token.length > 4096 || token.split(".").length !== 3) return inactive("MALFORMED");
      let header: ReturnType<typeof decodeProtectedHeader>;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        return inactive("MALFORMED");
      }
      if (header.alg !== SIGNING_ALG) return inactive("ALGORITHM_NOT_ALLOWED");
      if (typeof header.typ !== "string" || header.typ.toLowerCase().replace(/^application\//, "") !== ACCESS_TOKEN_TYPE) {
        return inactive("WRONG_TYPE");
      }
      const key = typeof header.kid === "string" ? keys.publicKey(header.kid) : undefined;
      if (!key) return inactive("UNKNOWN_KEY");
      const now = clock.now();
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [SIGNING_ALG],
          issuer: settings.issuer,
          audience: settings.audience,
          currentDate: now,
          clockTolerance: CLOCK_TOLERANCE_SEC,
          requiredClaims: ["sub", "sid", "jti", "iat", "exp"],
        });
        if (payload.iat! > now.getTime() / 1000 + CLOCK_TOLERANCE_SEC) return inactive("NOT_YET_VALID");
        const { sub, sid, jti, iat, exp, iss, aud, role, username, amr } = payload;
        if (
          typeof sub !== "string" || !UUID.test(sub) ||
          typeof sid !== "string" || !UUID.test(sid) ||
          typeof role !== "string" ||
          (username !== undefined && typeof username !== "string") ||
          !Array.isArray(amr) || !amr.every((m) => typeof m === "string")
        ) {
          return inactive("INVALID_CLAIMS");
        }
        return {
          active: true,
          claims: { sub, sid, jti: jti!, iat: iat!, exp: exp!, iss: iss!, aud: Array.isArray(aud) ? aud[0]! : aud!, role, username: username ?? "", amr },
        };
      } catch (err) {
        return inactive(reasonOf(err));
      }
    },
  };
}

function reasonOf(err: unknown): InactiveReason {
  if (err instanceof errors.JWTExpired) return "EXPIRED";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "BAD_SIGNATURE";
  if (err instanceof errors.JOSEAlgNotAllowed) return "ALGORITHM_NOT_ALLOWED";
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "iss":
        return "WRONG_ISSUER";
      case "aud":
        return "WRONG_AUDIENCE";
      case "nbf":
      case "iat":
        return "NOT_YET_VALID";
      default:
        return "INVALID_CLAIMS";
    }
  }
  return "MALFORMED";
}
