// Access tokens: JWTs signed with EdDSA, `typ: at+jwt` (RFC 9068). Verification pins the
// algorithm, type, issuer and audience, and names the reason when a token is not active.
import { randomUUID, sign } from "node:crypto";
import type { Clock } from "../clock.js";
import { SIGNING_ALG, type SigningKeys } from "./signing-keys.js";
import { ACCESS_TOKEN_TYPE, type TokenSettings, type Verification } from "./claims.js";
import { createAccessTokenVerifier } from "./verifier.js";


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

export function createAccessTokens(keys: SigningKeys, settings: TokenSettings, clock: Clock): AccessTokens {
  const verifier = createAccessTokenVerifier(keys, settings, clock);
  return {
    async issue(subject) {
      const { kid, privateKey } = keys.current();
      const iat = Math.floor(clock.now().getTime() / 1000);
      const exp = iat + settings.accessTokenTtlSec;
      // A compact JWS (RFC 7515) signed with node:crypto on the calling thread: jose signs through
      // WebCrypto, whose jobs queue on the libuv pool behind argon2 hashes during a login storm.
      // Every token is checked against the published JWKS with jose in the tests.
      const header = { alg: SIGNING_ALG, typ: ACCESS_TOKEN_TYPE, kid };
      const payload = {
        sid: subject.sessionId,
        role: subject.role,
        ...(subject.username ? { username: subject.username } : {}),
        amr: [...subject.amr],
        iss: settings.issuer,
        aud: settings.audience,
        sub: subject.userId,
        jti: randomUUID(),
        iat,
        exp,
      };
      const signingInput = `${base64url(header)}.${base64url(payload)}`;
      const signature = sign(null, Buffer.from(signingInput), privateKey).toString("base64url");
      return { token: `${signingInput}.${signature}`, expiresAt: new Date(exp * 1000) };
    },

    async verify(token) {
      return verifier.verify(token);
    },
  };
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
