// The client's own token check (src/client/jwt.ts) against tokens signed here with a real
// Ed25519 key: each thing wrong gives the inactive reason the service's verifier gives.
import { generateKeyPairSync, sign as signBytes, type KeyObject } from "node:crypto";
import { SignJWT, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import { checkToken } from "../../src/client/jwt.js";

const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const other = generateKeyPairSync("ed25519");
const ISSUER = "https://id.example.com";
const NOW = Date.parse("2026-12-03T12:00:00Z");
const nowSec = NOW / 1000;
const USER = "0a1b2c3d-0000-4000-8000-000000000001";
const SESSION = "0a1b2c3d-0000-4000-8000-000000000002";

const claims = (extra: JWTPayload = {}): JWTPayload => ({
  iss: ISSUER, aud: "identity", sub: USER, sid: SESSION, jti: "j", iat: nowSec - 10, exp: nowSec + 290,
  role: "user", amr: ["pwd"], auth_time: nowSec - 100, ...extra,
});
const sign = (payload: JWTPayload, header: Record<string, unknown> = {}, key: KeyObject = privateKey) =>
  new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: "k1", ...header }).sign(key);
const check = (token: string, audience = "identity") => checkToken(token, { issuer: ISSUER, audience, key: (kid) => (kid === "k1" ? publicKey : undefined), nowMs: NOW });
const reason = async (token: Promise<string> | string, audience?: string) => {
  const result = check(await token, audience);
  return result.active ? "ACTIVE" : result.reason;
};

describe("checkToken", () => {
  it("accepts a genuine person's token with its claims and auth_time", async () => {
    expect(check(await sign(claims()))).toEqual({
      active: true,
      principal: {
        kind: "user", subject: USER, userId: USER, sessionId: SESSION, tokenId: "j", role: "user", username: "", amr: ["pwd"],
        issuedAt: new Date((nowSec - 10) * 1000), expiresAt: new Date((nowSec + 290) * 1000), authTime: new Date((nowSec - 100) * 1000),
      },
    });
  });

  it("falls back to iat without auth_time, and refuses a mistyped one", async () => {
    const { auth_time: _, ...without } = claims();
    const result = check(await sign(without));
    expect(result.active && result.principal.kind === "user" && result.principal.authTime.getTime()).toBe((nowSec - 10) * 1000);
    expect(await reason(sign(claims({ auth_time: "yesterday" })))).toBe("INVALID_CLAIMS");
  });

  it("accepts a service token for its audience only", async () => {
    const token = await sign({ iss: ISSUER, aud: "payments", sub: "service:billing", client_id: "billing", scope: "a b", jti: "s", iat: nowSec, exp: nowSec + 300 });
    expect(check(token, "payments")).toMatchObject({ active: true, principal: { kind: "service", service: "billing", scope: ["a", "b"] } });
    expect(await reason(token, "identity")).toBe("WRONG_AUDIENCE");
    expect(await reason(sign({ iss: ISSUER, aud: "payments", sub: "service:billing", client_id: "other", scope: "", jti: "s", iat: nowSec, exp: nowSec + 300 }), "payments")).toBe("INVALID_CLAIMS");
  });

  it("gives each defect the service's reason", async () => {
    const good = await sign(claims());
    const [h, p, s] = good.split(".");
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    expect(await reason("not a token")).toBe("MALFORMED");
    expect(await reason(`${h}.${p}.${s}A`)).not.toBe("ACTIVE");
    expect(await reason(`${h}.${p}.${s}=`)).toBe("MALFORMED");
    expect(await reason(`${enc({ alg: "none", typ: "at+jwt", kid: "k1" })}.${p}.`)).toBe("ALGORITHM_NOT_ALLOWED");
    expect(await reason(`${enc({ alg: "HS256", typ: "at+jwt", kid: "k1" })}.${p}.${s}`)).toBe("ALGORITHM_NOT_ALLOWED");
    expect(await reason(sign(claims(), { typ: "JWT" }))).toBe("WRONG_TYPE");
    expect(await reason(sign(claims(), { typ: "application/at+jwt" }))).toBe("ACTIVE");
    expect(await reason(sign(claims(), { kid: "k2" }))).toBe("UNKNOWN_KEY");
    expect(await reason(sign(claims(), {}, other.privateKey))).toBe("BAD_SIGNATURE");
    expect(await reason(`${h}.${enc({ ...claims(), role: "admin" })}.${s}`)).toBe("BAD_SIGNATURE");
    expect(await reason(sign(claims({ iss: "https://evil.example.com" })))).toBe("WRONG_ISSUER");
    expect(await reason(sign(claims({ aud: "other" })))).toBe("WRONG_AUDIENCE");
    expect(await reason(sign(claims({ aud: ["other", "identity"] })))).toBe("ACTIVE");
    expect(await reason(sign(claims({ exp: nowSec - 5 })))).toBe("EXPIRED");
    expect(await reason(sign(claims({ exp: nowSec - 4 })))).toBe("ACTIVE");
    expect(await reason(sign(claims({ iat: nowSec + 6 })))).toBe("NOT_YET_VALID");
    expect(await reason(sign(claims({ iat: nowSec + 5 })))).toBe("ACTIVE");
    expect(await reason(sign(claims({ nbf: nowSec + 6 })))).toBe("NOT_YET_VALID");
    expect(await reason(sign(claims({ sub: "kim" })))).toBe("INVALID_CLAIMS");
    expect(await reason(sign(claims({ sid: undefined })))).toBe("INVALID_CLAIMS");
    expect(await reason(sign(claims({ amr: "pwd" })))).toBe("INVALID_CLAIMS");
    expect(await reason(sign({ ...claims(), iat: "now" } as unknown as JWTPayload))).toBe("INVALID_CLAIMS");
    const critHeader = enc({ alg: "EdDSA", typ: "at+jwt", kid: "k1", crit: ["x"], x: 1 });
    expect(await reason(`${critHeader}.${p}.${signBytes(null, Buffer.from(`${critHeader}.${p}`), privateKey).toString("base64url")}`)).toBe("MALFORMED");
    expect(await reason(`${good}${"A".repeat(4096)}`)).toBe("MALFORMED");
  });
});
