// VerifyToken against forged and mangled tokens (RFC 8725): every one answers active=false
// with the reason that names what is wrong, never an error and never active=true.
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { CompactSign, decodeJwt, exportJWK, SignJWT, type JWTPayload, type JWTHeaderParameters } from "jose";
import { describe, expect, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { expectError } from "../support/errors.js";
import { ManualClock, TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";

const clock = new ManualClock();
const t = setupService({ clock });
const { auth, tokens } = t.clients("grpc");
/** The victim's account: its tokens and the claims of a real access token, for forging otherwise-valid tokens. */
const victim = t.prepare(async () => {
  const res = await auth.signUp({ email: "jwt-victim@example.com", password: "a long enough passphrase" });
  const accessToken = res.tokens!.accessToken;
  return { accessToken, refreshToken: res.tokens!.refreshToken, userId: res.user!.id, sessionId: res.tokens!.sessionId, realClaims: decodeJwt(accessToken) };
});

const b64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

function verify(token: string) {
  return tokens.verifyToken({ token }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
}

async function expectInactive(token: string, reason: InactiveReason): Promise<void> {
  const res = await verify(token);
  expect({ active: res.active, reason: InactiveReason[res.reason] }).toEqual({ active: false, reason: InactiveReason[reason] });
  expect(res.userId).toBe("");
}

/** Signs `payload` with the service's own current private key. */
function signWithRealKey(payload: JWTPayload, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  const { kid, privateKey } = t.app.services.signingKeys.current();
  return new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid, ...header }).sign(privateKey);
}

function realKid(): string {
  return t.app.services.signingKeys.current().kid;
}

const nowSec = () => Math.floor(clock.now().getTime() / 1000);


describe("a genuine access token", () => {
  it("is active with its claims", async () => {
    const res = await verify(victim().accessToken);
    expect(res.active).toBe(true);
    expect(res.reason).toBe(InactiveReason.UNSPECIFIED);
    expect(res.userId).toBe(victim().userId);
    expect(res.sessionId).toBe(victim().sessionId);
    expect(res.tokenId).toBe(victim().realClaims.jti);
    expect(res.role).toBe("user");
    expect(res.amr).toEqual(["pwd"]);
    expect(res.issuer).toBe(t.config.issuer);
    expect(res.audience).toBe(t.config.audience);
    expect(timestampMs(res.issueTime!)).toBe((victim().realClaims.iat as number) * 1000);
    expect(timestampMs(res.expireTime!) - timestampMs(res.issueTime!)).toBe(300_000);
  });

  it("a token the test signs with the real key and real claims is active (the forging helper is sound)", async () => {
    const res = await verify(await signWithRealKey({ ...victim().realClaims, jti: "forged-but-valid" }));
    expect(res.active).toBe(true);
    expect(res.tokenId).toBe("forged-but-valid");
  });

  it("an empty token is INVALID_ARGUMENT, not active=false", async () => {
    await expectError(verify(""), { code: Code.InvalidArgument, reason: "INVALID_ARGUMENT", fields: ["token"] });
  });

  it("a wrong service key is UNAUTHENTICATED", async () => {
    await expectError(
      tokens.verifyToken({ token: victim().accessToken }, { headers: { "x-service-key": "not-the-key-0123456789abcdef0123456789" } }),
      { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" },
    );
  });
});

describe("algorithm attacks", () => {
  it("alg none (unsecured JWT, empty signature)", async () => {
    const { kid } = t.app.services.signingKeys.current();
    const header = { alg: "none", typ: "at+jwt", kid };
    await expectInactive(`${b64url(header)}.${b64url(victim().realClaims)}.`, InactiveReason.ALGORITHM_NOT_ALLOWED);
    // and with the real signature kept
    const signature = victim().accessToken.split(".")[2];
    await expectInactive(`${b64url(header)}.${b64url(victim().realClaims)}.${signature}`, InactiveReason.ALGORITHM_NOT_ALLOWED);
    await expectInactive(`${b64url({ ...header, alg: "None" })}.${b64url(victim().realClaims)}.`, InactiveReason.ALGORITHM_NOT_ALLOWED);
  });

  it("HS256 keyed with the public key (x bytes, JWK JSON, PEM)", async () => {
    const [jwk] = t.app.services.signingKeys.jwks();
    const pem = createPublicKey({ key: { kty: jwk!.kty, crv: jwk!.crv, x: jwk!.x }, format: "jwk" }).export({ type: "spki", format: "pem" });
    const secrets = [Buffer.from(jwk!.x, "base64url"), Buffer.from(jwk!.x), Buffer.from(JSON.stringify(jwk)), Buffer.from(pem)];
    for (const secret of secrets) {
      const token = await new SignJWT(victim().realClaims).setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: jwk!.kid }).sign(secret);
      await expectInactive(token, InactiveReason.ALGORITHM_NOT_ALLOWED);
    }
  });

  it("another asymmetric algorithm (ES256) with the service's kid", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const token = await new SignJWT(victim().realClaims).setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: realKid() }).sign(privateKey);
    await expectInactive(token, InactiveReason.ALGORITHM_NOT_ALLOWED);
  });
});

describe("keys and signatures", () => {
  it("unknown kid (a key the service never published)", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const attackerKid = "attacker-key";
    const token = await new SignJWT(victim().realClaims).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: attackerKid }).sign(privateKey);
    await expectInactive(token, InactiveReason.UNKNOWN_KEY);
    // embedding the attacker's key in the header (jwk) changes nothing
    const embedded = await new SignJWT(victim().realClaims)
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    await expectInactive(embedded, InactiveReason.UNKNOWN_KEY);
  });

  it("the service's kid but the attacker's key", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const token = await new SignJWT(victim().realClaims).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: realKid() }).sign(privateKey);
    await expectInactive(token, InactiveReason.BAD_SIGNATURE);
  });

  it("tampered payload: sub changed, signature kept", async () => {
    const [header, , signature] = victim().accessToken.split(".");
    const otherUser = "00000000-0000-4000-8000-000000000001";
    await expectInactive(`${header}.${b64url({ ...victim().realClaims, sub: otherUser })}.${signature}`, InactiveReason.BAD_SIGNATURE);
    await expectInactive(`${header}.${b64url({ ...victim().realClaims, role: "admin" })}.${signature}`, InactiveReason.BAD_SIGNATURE);
  });

  it("tampered header: typ changed, signature kept", async () => {
    const [, payload, signature] = victim().accessToken.split(".");
    const header = { alg: "EdDSA", typ: "AT+JWT", kid: realKid() };
    await expectInactive(`${b64url(header)}.${payload}.${signature}`, InactiveReason.BAD_SIGNATURE);
  });

  it("the same signature re-encoded (padding, junk, whitespace) is not the same token", async () => {
    const [header, payload, signature] = victim().accessToken.split(".");
    // An Ed25519 signature is 86 characters; the last one carries 2 bits, so its 4 low bits are free.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const lastBitsFlipped = signature!.slice(0, -1) + alphabet[alphabet.indexOf(signature!.slice(-1)) + 1];
    expect(Buffer.from(lastBitsFlipped, "base64url").equals(Buffer.from(signature!, "base64url"))).toBe(true);
    for (const variant of [`${signature}==`, `${signature}!!`, ` ${signature}`, `${signature}\n`, lastBitsFlipped]) {
      await expectInactive(`${header}.${payload}.${variant}`, InactiveReason.MALFORMED);
    }
  });

  it("signature stripped or truncated", async () => {
    const [header, payload, signature] = victim().accessToken.split(".");
    await expectInactive(`${header}.${payload}.`, InactiveReason.BAD_SIGNATURE);
    await expectInactive(`${header}.${payload}.${signature!.slice(0, 20)}`, InactiveReason.BAD_SIGNATURE);
    await expectInactive(`${header}.${payload}.${signature}AA`, InactiveReason.BAD_SIGNATURE);
  });
});

describe("token types", () => {
  it("a refresh token presented as an access token", async () => {
    await expectInactive(victim().refreshToken, InactiveReason.MALFORMED);
  });

  it("a JWT of another type signed with the real key (MFA challenge, plain JWT, no typ)", async () => {
    await expectInactive(await signWithRealKey(victim().realClaims, { typ: "mfa-challenge+jwt" }), InactiveReason.WRONG_TYPE);
    await expectInactive(await signWithRealKey(victim().realClaims, { typ: "JWT" }), InactiveReason.WRONG_TYPE);
    const { kid, privateKey } = t.app.services.signingKeys.current();
    const untyped = await new SignJWT(victim().realClaims).setProtectedHeader({ alg: "EdDSA", kid }).sign(privateKey);
    await expectInactive(untyped, InactiveReason.WRONG_TYPE);
  });
});

describe("time", () => {
  it("expires 300 s after issue (5 s clock tolerance)", async () => {
    const start = clock.now();
    try {
      const res = await auth.login({ identifier: "jwt-victim@example.com", password: "a long enough passphrase" });
      const token = res.result.case === "tokens" ? res.result.value.accessToken : "";
      clock.advance(304_000);
      expect((await verify(token)).active).toBe(true);
      clock.advance(2_000);
      await expectInactive(token, InactiveReason.EXPIRED);
    } finally {
      clock.set(start);
    }
  });

  it("nbf in the future", async () => {
    await expectInactive(await signWithRealKey({ ...victim().realClaims, nbf: nowSec() + 60 }), InactiveReason.NOT_YET_VALID);
  });

  it("iat in the future", async () => {
    const iat = nowSec() + 3600;
    await expectInactive(await signWithRealKey({ ...victim().realClaims, iat, exp: iat + 300 }), InactiveReason.NOT_YET_VALID);
  });

  it("a token from the future becomes valid when its time comes (not-yet-valid is not remembered)", async () => {
    const start = clock.now();
    try {
      const iat = nowSec() + 60;
      const token = await signWithRealKey({ ...victim().realClaims, jti: "from-the-future", iat, exp: iat + 300 });
      await expectInactive(token, InactiveReason.NOT_YET_VALID);
      clock.advance(60_000);
      expect((await verify(token)).active).toBe(true);
    } finally {
      clock.set(start);
    }
  });
});

describe("issuer and audience", () => {
  it("wrong audience", async () => {
    await expectInactive(await signWithRealKey({ ...victim().realClaims, aud: "some-other-api" }), InactiveReason.WRONG_AUDIENCE);
    await expectInactive(await signWithRealKey({ ...victim().realClaims, aud: ["some-other-api"] }), InactiveReason.WRONG_AUDIENCE);
  });

  it("wrong issuer", async () => {
    await expectInactive(await signWithRealKey({ ...victim().realClaims, iss: "https://evil.example" }), InactiveReason.WRONG_ISSUER);
  });

  it("no issuer or no audience at all", async () => {
    const { iss: _iss, ...noIssuer } = victim().realClaims;
    const { aud: _aud, ...noAudience } = victim().realClaims;
    await expectInactive(await signWithRealKey(noIssuer), InactiveReason.WRONG_ISSUER);
    await expectInactive(await signWithRealKey(noAudience), InactiveReason.WRONG_AUDIENCE);
  });
});

describe("malformed and incomplete tokens", () => {
  it("garbage strings", async () => {
    for (const garbage of ["x", "not a jwt", "a.b", "a.b.c", "a.b.c.d", "...", "..", "😀.😀.😀", `${"A".repeat(5000)}.e30.sig`]) {
      await expectInactive(garbage, InactiveReason.MALFORMED);
    }
  });

  it("a header that is JSON but not an object", async () => {
    await expectInactive(`${b64url("[]")}.${b64url(victim().realClaims)}.sig`, InactiveReason.MALFORMED);
  });

  it("a correctly signed payload that is not a JSON object", async () => {
    const { kid, privateKey } = t.app.services.signingKeys.current();
    const jws = await new CompactSign(Buffer.from("not json")).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid }).sign(privateKey);
    await expectInactive(jws, InactiveReason.MALFORMED);
  });

  it.each(["sub", "sid", "jti", "iat", "exp", "role", "amr"])("missing %s", async (claim) => {
    const { [claim]: _dropped, ...rest } = victim().realClaims;
    await expectInactive(await signWithRealKey(rest), InactiveReason.INVALID_CLAIMS);
  });

  it.each([
    ["sub not a UUID", { sub: "admin" }],
    ["sid not a UUID", { sid: "x" }],
    ["jti not a string", { jti: 12345 }],
    ["role not a string", { role: ["admin"] }],
    ["amr not a list of strings", { amr: "pwd" }],
    ["username not a string", { username: 7 }],
    ["exp not a number", { exp: "tomorrow" }],
    ["iat not a number", { iat: "yesterday" }],
  ] as [string, Record<string, unknown>][])("%s", async (_name, override) => {
    await expectInactive(await signWithRealKey({ ...victim().realClaims, ...override }), InactiveReason.INVALID_CLAIMS);
  });
});
