// Service tokens (issue 12, item 5): the client-credentials grant over gRPC. A service token
// names a service account (`sub` = `service:<name>`), an audience and a scope; VerifyToken and
// the JWKS verify it like a person's token and say whose it is; it never acts for a person.
import { Code } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createLocalJWKSet, decodeJwt, jwtVerify, SignJWT, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import { InactiveReason, SubjectKind } from "../../gen/identity/v1/token_service_pb.js";
import { bearer } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { transportNames } from "../support/transports.js";

const WITH_KEY = { headers: { "x-service-key": TEST_SERVICE_KEY } };

const t = setupService();
const { tokens } = t.clients("grpc");

/** A service token as IssueServiceToken signs it, minted in process (the RPC's own tests use real accounts). */
function mint(service = "billing", audience = "payments", scope = ["tokens.verify"]) {
  return t.app.services.accessTokens.issueService({ service, audience, scope }).token;
}

function verify(token: string, audience = "") {
  return tokens.verifyToken({ token, audience }, WITH_KEY);
}

/** Signs `payload` with the service's own current key: otherwise-valid tokens with one thing wrong. */
function signWithRealKey(payload: JWTPayload): Promise<string> {
  const { kid, privateKey } = t.app.services.signingKeys.current();
  return new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid }).sign(privateKey);
}

describe("VerifyToken with a service token", () => {
  it("is active for its audience, names the service and its scope, and no person", async () => {
    const token = mint("billing", "payments", ["tokens.issue", "tokens.verify"]);
    const claims = decodeJwt(token);
    const res = await verify(token, "payments");
    expect(res).toMatchObject({
      active: true,
      reason: InactiveReason.UNSPECIFIED,
      subjectKind: SubjectKind.SERVICE,
      serviceName: "billing",
      scope: ["tokens.issue", "tokens.verify"],
      userId: "",
      sessionId: "",
      role: "",
      amr: [],
      tokenId: claims.jti,
      issuer: t.config.issuer,
      audience: "payments",
    });
    expect(timestampMs(res.expireTime!) - timestampMs(res.issueTime!)).toBe(t.config.accessTokenTtlSec * 1000);
  });

  it("is inactive (WRONG_AUDIENCE) for any other audience, this service's own included", async () => {
    const token = mint("billing", "payments");
    for (const audience of ["", "ledger", "payments ", "PAYMENTS", t.config.audience]) {
      expect((await verify(token, audience)).reason, JSON.stringify(audience)).toBe(InactiveReason.WRONG_AUDIENCE);
    }
    // And the answer for the right audience is unchanged by the cache.
    expect((await verify(token, "payments")).active).toBe(true);
  });

  it("leaves a person's token to this service's own audience", async () => {
    const person = await t.signUp("svc-token-person");
    const res = await verify(person.tokens.accessToken);
    expect(res).toMatchObject({ active: true, subjectKind: SubjectKind.USER, userId: person.userId, serviceName: "", scope: [] });
    expect((await verify(person.tokens.accessToken, t.config.audience)).active).toBe(true);
    expect((await verify(person.tokens.accessToken, "payments")).reason).toBe(InactiveReason.WRONG_AUDIENCE);
  });

  it("verifies with the JWKS as a third-party resource server would (EdDSA, at+jwt, audience pinned)", async () => {
    const token = mint("billing", "payments", ["tokens.verify"]);
    const { keys } = await t.clients("connect").tokens.getJwks({});
    const jwks = createLocalJWKSet({ keys: keys.map((k) => ({ kty: k.kty, crv: k.crv, x: k.x, kid: k.kid, alg: k.alg, use: k.use })) });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      algorithms: ["EdDSA"],
      typ: "at+jwt",
      issuer: t.config.issuer,
      audience: "payments",
    });
    expect(protectedHeader.alg).toBe("EdDSA");
    expect(payload).toMatchObject({ sub: "service:billing", client_id: "billing", aud: "payments", scope: "tokens.verify" });
    expect(payload.sid).toBeUndefined();
    await expect(jwtVerify(token, jwks, { algorithms: ["EdDSA"], audience: t.config.audience })).rejects.toThrow(/aud/);
  });

  it("answers INVALID_CLAIMS for forged service claims signed with the real key", async () => {
    const now = Math.floor(t.clock.now().getTime() / 1000);
    const base = { iss: t.config.issuer, aud: "payments", sub: "service:billing", client_id: "billing", scope: "tokens.verify", jti: "j", iat: now, exp: now + 60 };
    const forged: Record<string, JWTPayload> = {
      "client_id naming another service": { ...base, client_id: "ledger" },
      "no client_id": { ...base, client_id: undefined },
      "a name that is not an account name": { ...base, sub: "service:Bad Name", client_id: "Bad Name" },
      "an empty name": { ...base, sub: "service:", client_id: "" },
      "a session": { ...base, sid: "00000000-0000-4000-8000-000000000000" },
      "scope as a list": { ...base, scope: ["tokens.verify"] },
      "no audience": { ...base, aud: [] },
      "an empty audience": { ...base, aud: [""] },
      "no expiry": { ...base, exp: undefined },
    };
    for (const [what, payload] of Object.entries(forged)) {
      const res = await verify(await signWithRealKey(payload), "payments");
      expect({ what, active: res.active, reason: InactiveReason[res.reason] }).toEqual({ what, active: false, reason: "INVALID_CLAIMS" });
    }
    // The same claims, well formed, are active: the refusals above are for what each one changes.
    expect((await verify(await signWithRealKey(base), "payments")).active).toBe(true);
  });
});

describe.each(transportNames)("a service token on a person's RPC over %s", (name) => {
  it("is refused: a service token never acts for a person", async () => {
    const { auth } = t.clients(name);
    const token = mint("billing", t.config.audience);
    // Active for this service's own audience, which a person's RPC would accept...
    expect((await verify(token)).active).toBe(true);
    // ...but it names no person.
    await t.expectUnchanged(() => expectError(auth.whoAmI({}, bearer(token)), { code: Code.Unauthenticated, reason: "ACCESS_TOKEN_INVALID" }));
  });
});
