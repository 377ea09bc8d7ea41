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
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
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
    // `iat` keeps milliseconds (revocation.ts), `exp` is whole seconds: the lifetime less that fraction.
    const lifetimeMs = timestampMs(res.expireTime!) - timestampMs(res.issueTime!);
    expect(lifetimeMs).toBeGreaterThan(t.config.accessTokenTtlSec * 1000 - 1000);
    expect(lifetimeMs).toBeLessThanOrEqual(t.config.accessTokenTtlSec * 1000);
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

describe("IssueServiceToken", () => {
  const u = setupService();
  const { tokens: grpcTokens } = u.clients("grpc");
  const as = (key: string) => ({ headers: { "x-service-key": key } });
  const issued = (service: string) => u.db.query("SELECT caller, details FROM audit_events WHERE type = 'SERVICE_TOKEN_ISSUED' AND details->>'service' = $1", [service]) as Promise<Array<{ caller: string; details: Record<string, string> }>>;

  it("gives a service account with tokens.issue a token for an allowed audience, which the receiving service verifies", async () => {
    const billing = await accountWithKey(u, uniqueAccountName("billing"), ["tokens.issue", "tokens.verify"], { audiences: ["payments", "ledger"] });
    const payments = await accountWithKey(u, uniqueAccountName("payments"), ["tokens.verify"]);
    const res = await grpcTokens.issueServiceToken({ audience: "payments" }, as(billing.key));
    expect(res.scope).toEqual(["tokens.issue", "tokens.verify"]);
    expect(timestampMs(res.expireTime!) - Date.now()).toBeGreaterThan((u.config.accessTokenTtlSec - 5) * 1000);
    expect(decodeJwt(res.accessToken)).toMatchObject({ sub: `service:${billing.name}`, client_id: billing.name, aud: "payments", scope: "tokens.issue tokens.verify" });
    // The receiving service (payments) verifies it with its own key, naming its audience.
    expect(await grpcTokens.verifyToken({ token: res.accessToken, audience: "payments" }, as(payments.key))).toMatchObject({
      active: true,
      subjectKind: SubjectKind.SERVICE,
      serviceName: billing.name,
    });
    // Audited, naming the service that asked.
    expect(await issued(billing.name)).toEqual([{ caller: billing.name, details: { service: billing.name, audience: "payments" } }]);
    // Also with the key as a bearer credential.
    expect((await grpcTokens.issueServiceToken({ audience: "ledger" }, { headers: { authorization: `Bearer ${billing.key}` } })).accessToken).not.toBe("");
  });

  it("refuses an audience the account was not granted, with PERMISSION_DENIED and nothing stored", async () => {
    const billing = await accountWithKey(u, uniqueAccountName("billing-aud"), ["tokens.issue"], { audiences: ["payments"] });
    await u.expectUnchanged(async () => {
      for (const audience of ["ledger", "Payments", "payments ", "*", u.config.audience]) {
        await expectError(grpcTokens.issueServiceToken({ audience }, as(billing.key)), { code: Code.PermissionDenied, reason: "AUDIENCE_NOT_ALLOWED" });
      }
      await expectError(grpcTokens.issueServiceToken({ audience: "" }, as(billing.key)), { code: Code.InvalidArgument, fields: ["audience"] });
      await expectError(grpcTokens.issueServiceToken({ audience: "p".repeat(256) }, as(billing.key)), { code: Code.InvalidArgument, fields: ["audience"] });
    });
    expect(await issued(billing.name)).toEqual([]);
  });

  it("refuses a caller without tokens.issue, a bootstrap key, a revoked key, a disabled account and no key at all", async () => {
    const verifier = await accountWithKey(u, uniqueAccountName("verifier-only"), ["tokens.verify"], { audiences: ["payments"] });
    const revoked = await accountWithKey(u, uniqueAccountName("revoked-key"), ["tokens.issue"], { audiences: ["payments"] });
    const disabled = await accountWithKey(u, uniqueAccountName("disabled"), ["tokens.issue"], { audiences: ["payments"] });
    await u.app.serviceAccounts.revokeKey(revoked.prefix);
    await u.app.serviceAccounts.disable(disabled.name);
    await u.expectUnchanged(async () => {
      await expectError(grpcTokens.issueServiceToken({ audience: "payments" }, as(verifier.key)), { code: Code.PermissionDenied, reason: "PERMISSION_MISSING" });
      // Bootstrap callers (SERVICE_KEYS) hold every permission but no audience.
      await expectError(grpcTokens.issueServiceToken({ audience: "payments" }, WITH_KEY), { code: Code.PermissionDenied, reason: "AUDIENCE_NOT_ALLOWED" });
      await expectError(grpcTokens.issueServiceToken({ audience: "payments" }, as(revoked.key)), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
      await expectError(grpcTokens.issueServiceToken({ audience: "payments" }, as(disabled.key)), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
      // The development loopback exemption names no account: nobody to issue a token to.
      await expectError(grpcTokens.issueServiceToken({ audience: "payments" }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_REQUIRED" });
    });
  });

  it("is internal: the gateway does not serve it", async () => {
    const billing = await accountWithKey(u, uniqueAccountName("billing-gw"), ["tokens.issue"], { audiences: ["payments"] });
    for (const name of ["connect", "grpc-web"] as const) {
      await expectError(u.clients(name).tokens.issueServiceToken({ audience: "payments" }, as(billing.key)), { code: Code.Unimplemented });
    }
  });

  it("a disabled account's tokens are inactive within 1 s, and stay so after it is enabled again", async () => {
    const billing = await accountWithKey(u, uniqueAccountName("billing-off"), ["tokens.issue"], { audiences: ["payments"] });
    const { accessToken } = await grpcTokens.issueServiceToken({ audience: "payments" }, as(billing.key));
    const reason = async () => (await grpcTokens.verifyToken({ token: accessToken, audience: "payments" }, WITH_KEY)).reason;
    /** Polls VerifyToken until it answers `expected`; fails after 1 s. */
    const within1s = async (expected: InactiveReason) => {
      const started = Date.now();
      while ((await reason()) !== expected) {
        if (Date.now() - started > 1_000) throw new Error(`still ${InactiveReason[await reason()]} after 1 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    expect(await reason()).toBe(InactiveReason.UNSPECIFIED);
    await u.app.serviceAccounts.disable(billing.name);
    await within1s(InactiveReason.USER_DISABLED);
    await u.app.serviceAccounts.enable(billing.name);
    await within1s(InactiveReason.TOKEN_REVOKED);
  });
});
