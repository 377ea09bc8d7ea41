// The access-token verifier on the hot path (no database, no server): keys made here with
// node:crypto, tokens signed here with jose, the clock moved by hand. Each way a token can be
// wrong answers its own reason; a cached result never outlives the token.
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { SignJWT, type JWTHeaderParameters, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/domain/clock.js";
import type { SigningKeys } from "../../src/domain/tokens/signing-keys.js";
import { CLOCK_TOLERANCE_SEC, createAccessTokenVerifier } from "../../src/domain/tokens/verifier.js";

const SETTINGS = { issuer: "https://id.example.com", audience: "api.example.com", accessTokenTtlSec: 300 };
const USER = "0a1b2c3d-0000-4000-8000-000000000001";
const SESSION = "0a1b2c3d-0000-4000-8000-000000000002";
const START = new Date("2026-12-03T08:00:00Z");

interface Fixture {
  readonly clock: ManualClock;
  readonly verify: (token: string) => ReturnType<ReturnType<typeof createAccessTokenVerifier>["verify"]>;
  /** Publishes (or withdraws, with undefined) the public key of `kid`. */
  readonly publish: (kid: string, key: KeyObject | undefined) => void;
  readonly privateKey: KeyObject;
  readonly nowSec: () => number;
}

/** Only publicKey() is the verifier's business; the rest must not be called. */
function keysOf(published: Map<string, KeyObject>): SigningKeys {
  const unused = () => {
    throw new Error("not used by the verifier");
  };
  return {
    publicKey: (kid) => published.get(kid),
    init: unused,
    reload: unused,
    rotate: unused,
    rotateIfDue: unused,
    current: unused,
    currentAgeSeconds: unused,
    jwks: unused,
    startMaintenance: unused,
    stop: unused,
  };
}

function fixture(): Fixture {
  const clock = new ManualClock(START);
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const published = new Map<string, KeyObject>([["k1", publicKey]]);
  const verifier = createAccessTokenVerifier(keysOf(published), SETTINGS, clock);
  return {
    clock,
    verify: (token) => verifier.verify(token),
    publish: (kid, key) => (key ? published.set(kid, key) : published.delete(kid)),
    privateKey,
    nowSec: () => Math.floor(clock.now().getTime() / 1000),
  };
}

function claims(f: Fixture, overrides: Record<string, unknown> = {}): JWTPayload {
  const iat = f.nowSec();
  return {
    iss: SETTINGS.issuer,
    aud: SETTINGS.audience,
    sub: USER,
    sid: SESSION,
    jti: "token-1",
    iat,
    exp: iat + SETTINGS.accessTokenTtlSec,
    role: "user",
    username: "kim",
    amr: ["pwd"],
    ...overrides,
  };
}

function sign(payload: JWTPayload, key: KeyObject, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: "k1", ...header }).sign(key);
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

describe("a genuine access token", () => {
  it("is active with its claims", async () => {
    const f = fixture();
    const payload = claims(f);
    expect(f.verify(await sign(payload, f.privateKey))).toEqual({
      active: true,
      claims: { kind: "user", sub: USER, sid: SESSION, jti: "token-1", iat: payload.iat, exp: payload.exp, authTime: payload.iat, iss: SETTINGS.issuer, aud: SETTINGS.audience, role: "user", username: "kim", amr: ["pwd"] },
    });
  });

  it("accepts the media-type spelling of typ and an audience list that names this audience", async () => {
    const f = fixture();
    expect(f.verify(await sign(claims(f), f.privateKey, { typ: "application/AT+JWT" })).active).toBe(true);
    expect(f.verify(await sign(claims(f, { aud: ["other", SETTINGS.audience] }), f.privateKey)).active).toBe(true);
  });

  it("has an empty username when the claim is absent", async () => {
    const f = fixture();
    const result = f.verify(await sign(claims(f, { username: undefined }), f.privateKey));
    expect(result).toMatchObject({ active: true, claims: { username: "" } });
  });
});

describe("time", () => {
  it("is active until exp, within the clock tolerance, and EXPIRED after, also when cached", async () => {
    const f = fixture();
    const token = await sign(claims(f), f.privateKey);
    expect(f.verify(token).active).toBe(true);
    f.clock.advance((SETTINGS.accessTokenTtlSec + CLOCK_TOLERANCE_SEC - 1) * 1000);
    expect(f.verify(token).active).toBe(true);
    f.clock.advance(1_000);
    expect(f.verify(token)).toEqual({ active: false, reason: "EXPIRED" });
  });

  it("is NOT_YET_VALID when issued or valid only beyond the tolerance, and active once the clock gets there", async () => {
    const f = fixture();
    const ahead = f.nowSec() + CLOCK_TOLERANCE_SEC + 10;
    const early = await sign(claims(f, { iat: ahead, exp: ahead + 300 }), f.privateKey);
    const notBefore = await sign(claims(f, { nbf: ahead }), f.privateKey);
    expect(f.verify(early)).toEqual({ active: false, reason: "NOT_YET_VALID" });
    expect(f.verify(notBefore)).toEqual({ active: false, reason: "NOT_YET_VALID" });
    // Not remembered: the same tokens verify once their time has come.
    f.clock.advance(10_000);
    expect(f.verify(early).active).toBe(true);
    expect(f.verify(notBefore).active).toBe(true);
  });

  it("tolerates a few seconds of skew between instances", async () => {
    const f = fixture();
    const iat = f.nowSec() + CLOCK_TOLERANCE_SEC;
    expect(f.verify(await sign(claims(f, { iat, exp: iat + 300 }), f.privateKey)).active).toBe(true);
  });
});

describe("keys and signatures", () => {
  it("an unknown kid is UNKNOWN_KEY, and not remembered: the key may be another instance's newest", async () => {
    const f = fixture();
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const token = await sign(claims(f), privateKey, { kid: "k2" });
    expect(f.verify(token)).toEqual({ active: false, reason: "UNKNOWN_KEY" });
    f.publish("k2", publicKey);
    expect(f.verify(token).active).toBe(true);
  });

  it("a known kid with another key's signature is BAD_SIGNATURE", async () => {
    const f = fixture();
    const attacker = generateKeyPairSync("ed25519").privateKey;
    expect(f.verify(await sign(claims(f), attacker))).toEqual({ active: false, reason: "BAD_SIGNATURE" });
  });

  it("changed claims under a genuine signature are BAD_SIGNATURE", async () => {
    const f = fixture();
    const [header, , signature] = (await sign(claims(f), f.privateKey)).split(".");
    expect(f.verify(`${header}.${b64url(claims(f, { role: "admin" }))}.${signature}`)).toEqual({ active: false, reason: "BAD_SIGNATURE" });
  });

  it("any algorithm but EdDSA is ALGORITHM_NOT_ALLOWED, alg none included", async () => {
    const f = fixture();
    const es256 = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    expect(f.verify(await sign(claims(f), es256, { alg: "ES256" }))).toEqual({ active: false, reason: "ALGORITHM_NOT_ALLOWED" });
    const none = `${b64url({ alg: "none", typ: "at+jwt", kid: "k1" })}.${b64url(claims(f))}.`;
    expect(f.verify(none)).toEqual({ active: false, reason: "ALGORITHM_NOT_ALLOWED" });
  });

  it("a signature in a non-canonical base64url spelling is MALFORMED", async () => {
    const f = fixture();
    const token = await sign(claims(f), f.privateKey);
    expect(f.verify(`${token}=`)).toEqual({ active: false, reason: "MALFORMED" });
    expect(f.verify(`${token.slice(0, -1)}+`)).toEqual({ active: false, reason: "MALFORMED" });
  });
});

describe("shape and type", () => {
  it("anything that is not three base64url JSON parts, or longer than 4096 characters, is MALFORMED", async () => {
    const f = fixture();
    const token = await sign(claims(f), f.privateKey);
    for (const bad of ["", "garbage", "a.b", "a.b.c.d", "!!!.???.###", `${b64url([])}.${b64url(claims(f))}.sig`, token + ".x"]) {
      expect(f.verify(bad), bad).toEqual({ active: false, reason: "MALFORMED" });
    }
    const long = await sign(claims(f, { pad: "x".repeat(4096) }), f.privateKey);
    expect(f.verify(long)).toEqual({ active: false, reason: "MALFORMED" });
  });

  it("a token of another type (a refresh token, an MFA challenge, a plain JWT) is WRONG_TYPE", async () => {
    const f = fixture();
    for (const typ of ["mfa-challenge+jwt", "JWT", "refresh+jwt"]) {
      expect(f.verify(await sign(claims(f), f.privateKey, { typ })), typ).toEqual({ active: false, reason: "WRONG_TYPE" });
    }
    const untyped = await new SignJWT(claims(f)).setProtectedHeader({ alg: "EdDSA", kid: "k1" }).sign(f.privateKey);
    expect(f.verify(untyped)).toEqual({ active: false, reason: "WRONG_TYPE" });
  });

  it("a critical header extension is MALFORMED", async () => {
    const f = fixture();
    const header = { alg: "EdDSA", typ: "at+jwt", kid: "k1", crit: ["exp"], exp: 1 };
    const token = await new SignJWT(claims(f)).setProtectedHeader(header as JWTHeaderParameters).sign(f.privateKey).catch(() => undefined);
    // jose may itself refuse to sign an unknown critical parameter; then forge the header.
    const forged = token ?? `${b64url(header)}.${b64url(claims(f))}.AAAA`;
    expect(f.verify(forged)).toEqual({ active: false, reason: "MALFORMED" });
  });

  it("another issuer or audience is WRONG_ISSUER or WRONG_AUDIENCE", async () => {
    const f = fixture();
    expect(f.verify(await sign(claims(f, { iss: "https://evil.example" }), f.privateKey))).toEqual({ active: false, reason: "WRONG_ISSUER" });
    expect(f.verify(await sign(claims(f, { iss: undefined }), f.privateKey))).toEqual({ active: false, reason: "WRONG_ISSUER" });
    expect(f.verify(await sign(claims(f, { aud: "other" }), f.privateKey))).toEqual({ active: false, reason: "WRONG_AUDIENCE" });
    expect(f.verify(await sign(claims(f, { aud: ["other"] }), f.privateKey))).toEqual({ active: false, reason: "WRONG_AUDIENCE" });
  });

  const invalid: Array<[string, Record<string, unknown>]> = [
    ["a subject that is not a UUID", { sub: "admin" }],
    ["no session", { sid: undefined }],
    ["a session that is not a UUID", { sid: 42 }],
    ["no token id", { jti: undefined }],
    ["iat as a string", { iat: "now" }],
    ["no exp", { exp: undefined }],
    ["nbf as a string", { nbf: "later" }],
    ["no role", { role: undefined }],
    ["a username that is not a string", { username: 7 }],
    ["amr that is not a list", { amr: "pwd" }],
    ["amr with a non-string", { amr: ["pwd", 1] }],
  ];
  it.each(invalid)("%s is INVALID_CLAIMS", async (_, overrides) => {
    const f = fixture();
    expect(f.verify(await sign(claims(f, overrides), f.privateKey))).toEqual({ active: false, reason: "INVALID_CLAIMS" });
  });
});
