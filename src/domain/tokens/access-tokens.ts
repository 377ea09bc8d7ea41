// Access tokens: JWTs signed with EdDSA, `typ: at+jwt` (RFC 9068). Verification pins the
// algorithm, type, issuer and audience, and names the reason when a token is not active.
import { randomUUID, sign as signWith } from "node:crypto";
import type { Clock } from "../clock.js";
import { SIGNING_ALG, type SigningKeys } from "./signing-keys.js";
import { ACCESS_TOKEN_TYPE, SERVICE_SUBJECT_PREFIX, type TokenSettings, type Verification } from "./claims.js";
import { createAccessTokenVerifier } from "./verifier.js";


export interface AccessTokenSubject {
  readonly userId: string;
  readonly sessionId: string;
  /** When the session signed in (`auth_time`, OpenID Connect Core §2): what a maximum authentication age is measured from. */
  readonly authTime: Date;
  readonly role: string;
  readonly username: string | null;
  readonly amr: readonly string[];
}

/** Who a service token is for: the calling account, the service it will call, what it may do. */
export interface ServiceTokenSubject {
  readonly service: string;
  readonly audience: string;
  readonly scope: readonly string[];
}

export interface IssuedAccessToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export interface AccessTokens {
  issue(subject: AccessTokenSubject): Promise<IssuedAccessToken>;
  /** A service token (RFC 9068 client-credentials profile): `sub` = `service:<name>`, no session. */
  issueService(subject: ServiceTokenSubject): IssuedAccessToken;
  /**
   * Checks signature and claims only (`audience`: see AccessTokenVerifier.verify); revocation is
   * checked by the caller. Synchronous: a token seen before is one cache lookup (verifier.ts).
   */
  verify(token: string, audience?: string): Verification;
}

export function createAccessTokens(keys: SigningKeys, settings: TokenSettings, clock: Clock): AccessTokens {
  const verifier = createAccessTokenVerifier(keys, settings, clock);

  /**
   * A compact JWS (RFC 7515) signed with node:crypto on the calling thread: jose signs through
   * WebCrypto, whose jobs queue on the libuv pool behind argon2 hashes during a login storm.
   * Every token is checked against the published JWKS with jose in the tests.
   */
  function sign(claims: (times: { iat: number; exp: number; jti: string }) => object, iatInMs = false): IssuedAccessToken {
    const { kid, privateKey } = keys.current();
    const nowMs = clock.now().getTime();
    const whole = Math.floor(nowMs / 1000);
    // NumericDate may have a fraction (RFC 7519 §2). A service token's `iat` keeps milliseconds:
    // it has no session, so only `iat` tells a token issued before its account was disabled and
    // enabled again, within one second, from one issued after (revocation.ts).
    const iat = iatInMs ? nowMs / 1000 : whole;
    const exp = whole + settings.accessTokenTtlSec;
    const header = { alg: SIGNING_ALG, typ: ACCESS_TOKEN_TYPE, kid };
    const signingInput = `${base64url(header)}.${base64url(claims({ iat, exp, jti: randomUUID() }))}`;
    const signature = signWith(null, Buffer.from(signingInput), privateKey).toString("base64url");
    return { token: `${signingInput}.${signature}`, expiresAt: new Date(exp * 1000) };
  }

  return {
    async issue(subject) {
      return sign(({ iat, exp, jti }) => ({
        sid: subject.sessionId,
        auth_time: Math.floor(subject.authTime.getTime() / 1000),
        role: subject.role,
        ...(subject.username ? { username: subject.username } : {}),
        amr: [...subject.amr],
        iss: settings.issuer,
        aud: settings.audience,
        sub: subject.userId,
        jti,
        iat,
        exp,
      }));
    },

    issueService({ service, audience, scope }) {
      return sign(({ iat, exp, jti }) => ({
        iss: settings.issuer,
        sub: `${SERVICE_SUBJECT_PREFIX}${service}`,
        aud: audience,
        client_id: service,
        scope: scope.join(" "),
        jti,
        iat,
        exp,
      }), true);
    },

    verify: (token, audience) => verifier.verify(token, audience),
  };
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
