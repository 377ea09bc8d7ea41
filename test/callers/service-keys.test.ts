// Named service accounts calling the service (issue 12, item 2): resolved once per call from
// x-service-key, `authorization: Bearer isk_...` or a client certificate; refused loudly when the
// key is dead; named in the log line, the RPC metrics and the audit rows their calls write.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { bearer, signUp, uniqueEmail } from "../support/accounts.js";
import { createTestPki, type IssuedCertificate, type TestCa } from "../support/certificates.js";
import { expectError } from "../support/errors.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { prepared, setupService } from "../support/setup.js";
import { clientsFor, type Clients } from "../support/transports.js";

const PASSWORD = "a long enough passphrase";

describe("service keys over grpc-js", () => {
  // A successful VerifyToken logs at debug (the hot path writes nothing at info): its line names the caller there.
  const t = setupService({ env: { LOG_LEVEL: "debug" } });
  const { auth, tokens } = t.clients("grpc");
  const accessToken = t.prepare(async () => (await signUp(auth, "svc-keys")).tokens.accessToken);
  const billing = t.prepare(() => accountWithKey(t, "billing", ["tokens.verify"]));

  /** The log line of the call that carried `requestId`. */
  const logOf = (requestId: string) => {
    const lines = t.logLines.filter((l) => l.includes(`"requestId":"${requestId}"`));
    expect(lines).toHaveLength(1);
    return JSON.parse(lines[0]!) as { caller: string; status: string };
  };

  it("a named key with tokens.verify calls VerifyToken in x-service-key, and in authorization: Bearer", async () => {
    const { key } = billing();
    const presented: Array<Record<string, string>> = [{ "x-service-key": key }, { authorization: `Bearer ${key}` }];
    for (const headers of presented) {
      const verified = await tokens.verifyToken({ token: accessToken() }, { headers });
      expect(verified.active).toBe(true);
    }
  });

  it("a key of an account without tokens.verify is PERMISSION_DENIED (PERMISSION_MISSING)", async () => {
    const { key } = await accountWithKey(t, uniqueAccountName("reader"), ["users.read"]);
    await expectError(tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": key } }), { code: Code.PermissionDenied, reason: "PERMISSION_MISSING" });
  });

  it("unknown and malformed keys are UNAUTHENTICATED (SERVICE_KEY_INVALID)", async () => {
    const { key } = billing();
    const unknownPrefix = `isk_${"a".repeat(12)}_${key.slice(-43)}`;
    const wrongSecret = `${key.slice(0, -43)}${"A".repeat(43)}`;
    for (const bad of [unknownPrefix, wrongSecret, "isk_short", "not-a-key-at-all-0123456789abcdef0123", `${key}x`]) {
      await expectError(tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": bad } }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
      await expectError(tokens.verifyToken({ token: accessToken() }, { headers: { authorization: `Bearer ${bad.startsWith("isk_") ? bad : `isk_${bad}`}` } }), {
        code: Code.Unauthenticated,
        reason: "SERVICE_KEY_INVALID",
      });
    }
  });

  it("a revoked key is refused at once on this instance, and stays revoked", async () => {
    const account = await accountWithKey(t, uniqueAccountName("revoked"), ["tokens.verify"]);
    const headers = { "x-service-key": account.key };
    expect((await tokens.verifyToken({ token: accessToken() }, { headers })).active).toBe(true);
    expect(await t.app.serviceAccounts.revokeKey(account.prefix)).toBe(true);
    await expectError(tokens.verifyToken({ token: accessToken() }, { headers }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
  });

  it("an expired key is refused, also once its resolution is cached", async () => {
    const account = await accountWithKey(t, uniqueAccountName("expiring"), ["tokens.verify"], { expiresAt: new Date(Date.now() + 1_500) });
    const headers = { "x-service-key": account.key };
    expect((await tokens.verifyToken({ token: accessToken() }, { headers })).active).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    await expectError(tokens.verifyToken({ token: accessToken() }, { headers }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
  });

  it("a disabled account's key is UNAUTHENTICATED, on public RPCs too, and storing nothing; enabling brings it back", async () => {
    const account = await accountWithKey(t, uniqueAccountName("disabled"), ["tokens.verify"]);
    const headers = { "x-service-key": account.key };
    expect(await t.app.serviceAccounts.disable(account.name)).toBe(true);
    await expectError(tokens.verifyToken({ token: accessToken() }, { headers }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
    // A BFF with a dead key fails loudly instead of signing people up anonymously.
    await t.expectNothingStored(() =>
      expectError(auth.signUp({ email: uniqueEmail("dead-key"), password: PASSWORD }, { headers }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" }),
    );
    expect(await t.app.serviceAccounts.enable(account.name)).toBe(true);
    expect((await tokens.verifyToken({ token: accessToken() }, { headers })).active).toBe(true);
  });

  it("an internal RPC without any credential from loopback in development is logged as loopback-dev", async () => {
    await tokens.verifyToken({ token: accessToken() }, { headers: { "x-request-id": "caller-loopback-1" } });
    expect(logOf("caller-loopback-1").caller).toBe("loopback-dev");
  });

  it("the log line names the caller: the account, user, anonymous", async () => {
    await tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": billing().key, "x-request-id": "caller-billing-1" } });
    expect(logOf("caller-billing-1").caller).toBe("billing");
    await auth.whoAmI({}, { headers: { ...bearer(accessToken()).headers, "x-request-id": "caller-user-1" } });
    expect(logOf("caller-user-1").caller).toBe("user");
    await auth.signUp({ email: uniqueEmail("anon"), password: PASSWORD }, { headers: { "x-request-id": "caller-anonymous-1" } });
    expect(logOf("caller-anonymous-1").caller).toBe("anonymous");
    // A refusal names the caller too.
    const reader = await accountWithKey(t, uniqueAccountName("refused"), ["users.read"]);
    await expectError(tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": reader.key, "x-request-id": "caller-refused-1" } }), { code: Code.PermissionDenied });
    expect(logOf("caller-refused-1")).toMatchObject({ caller: reader.name, status: "PermissionDenied" });
  });

  it("the RPC metrics carry the caller label", async () => {
    await tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": billing().key } });
    const body = await (await fetch(t.metricsUrl)).text();
    expect(body).toMatch(/identity_rpc_requests_total\{service="identity.v1.TokenService",method="VerifyToken",code="OK",transport="grpc",caller="billing"\} [1-9]/);
    expect(body).toMatch(/identity_rpc_duration_seconds_count\{service="identity.v1.TokenService",method="VerifyToken",code="OK",transport="grpc",caller="billing"\} [1-9]/);
  });

  it("an audit row written during a BFF's call records the BFF; a person's own call records no caller", async () => {
    const bff = await accountWithKey(t, uniqueAccountName("bff"), ["client-address.forward"]);
    const viaBff = await auth.signUp({ email: uniqueEmail("via-bff"), password: PASSWORD }, { headers: { "x-service-key": bff.key } });
    const direct = await auth.signUp({ email: uniqueEmail("direct"), password: PASSWORD });
    const rows = async (accessToken: string) => {
      const { userId } = await t.verify(accessToken);
      return (await t.db.query("SELECT type, caller FROM audit_events WHERE user_id = $1", [userId])) as Array<{ type: string; caller: string | null }>;
    };
    expect(await rows(viaBff.tokens!.accessToken)).toEqual([{ type: "SIGN_UP", caller: bff.name }]);
    expect(await rows(direct.tokens!.accessToken)).toEqual([{ type: "SIGN_UP", caller: null }]);
    // The person sees it in their activity.
    const activity = async (accessToken: string) => (await auth.listActivity({}, bearer(accessToken))).events.map((e) => e.caller);
    expect(await activity(viaBff.tokens!.accessToken)).toEqual([bff.name]);
    expect(await activity(direct.tokens!.accessToken)).toEqual([""]);
  });
});

describe("service accounts named by a client certificate (mTLS)", () => {
  const files = prepared(
    () => {
      const pki = createTestPki();
      const ca = pki.ca("accounts-test-ca");
      return {
        pki,
        ca,
        server: pki.server(ca, "identity-accounts"),
        billing: pki.client(ca, "billing-cert", "spiffe://example.org/ns/prod/sa/billing"),
        reporting: pki.client(ca, "reporting-cert", "spiffe://example.org/ns/prod/sa/reporting"),
        unregistered: pki.client(ca, "nobody-cert", "spiffe://example.org/ns/prod/sa/nobody"),
      };
    },
    ({ pki }) => pki.remove(),
  );
  const t = setupService(() => ({
    // LOG_LEVEL=debug: a successful VerifyToken's line, which names the certificate's caller, is at debug.
    env: { TLS_CERT_FILE: files().server.certFile, TLS_KEY_FILE: files().server.keyFile, TLS_CLIENT_CA_FILE: files().ca.certFile, LOG_LEVEL: "debug" },
  }));
  const opened: Clients[] = [];
  const over = (ca: TestCa, as: IssuedCertificate) => {
    const set = clientsFor(t.service, "grpc", { ca: ca.cert, cert: as.cert, key: as.key });
    opened.push(set);
    return set;
  };
  const names = t.prepare(async () => {
    const billing = uniqueAccountName("billing-mtls");
    const reporting = uniqueAccountName("reporting-mtls");
    await t.app.serviceAccounts.create({ name: billing, permissions: ["tokens.verify"] });
    await t.app.serviceAccounts.addCertificate(billing, { spiffe: "spiffe://example.org/ns/prod/sa/billing" });
    await t.app.serviceAccounts.create({ name: reporting, permissions: ["users.read"] });
    // By subject: node prints it one attribute per line; the operator types it comma-separated.
    await t.app.serviceAccounts.addCertificate(reporting, { subject: "O=Identity tests, CN=reporting-cert" });
    return { billing, reporting };
  });

  it("a certificate with a registered SPIFFE ID calls VerifyToken with no key, named in the log", async () => {
    const { client } = over(files().ca, files().billing);
    const account = await signUp(client(AuthService), "mtls-caller");
    const verified = await client(TokenService).verifyToken({ token: account.tokens.accessToken }, { headers: { "x-request-id": "mtls-billing-1" } });
    expect(verified.active).toBe(true);
    const line = t.logLines.find((l) => l.includes('"requestId":"mtls-billing-1"'));
    expect(JSON.parse(line!)).toMatchObject({ caller: names().billing, status: "OK" });
    opened.splice(0).forEach((c) => c.close());
  });

  it("a certificate named by its subject is that account: without tokens.verify, PERMISSION_MISSING", async () => {
    const { client } = over(files().ca, files().reporting);
    await expectError(client(TokenService).verifyToken({ token: "x" }), { code: Code.PermissionDenied, reason: "PERMISSION_MISSING" });
    opened.splice(0).forEach((c) => c.close());
  });

  it("a verified certificate naming no account is no caller (here the development loopback exemption applies)", async () => {
    const { client } = over(files().ca, files().unregistered);
    await client(TokenService).verifyToken({ token: "x" }, { headers: { "x-request-id": "mtls-nobody-1" } });
    const line = t.logLines.find((l) => l.includes('"requestId":"mtls-nobody-1"'));
    expect(JSON.parse(line!)).toMatchObject({ caller: "loopback-dev" });
    opened.splice(0).forEach((c) => c.close());
  });

  it("disabling the certificate's account refuses it (UNAUTHENTICATED)", async () => {
    const { client } = over(files().ca, files().billing);
    await t.app.serviceAccounts.disable(names().billing);
    try {
      await expectError(client(TokenService).verifyToken({ token: "x" }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
    } finally {
      await t.app.serviceAccounts.enable(names().billing);
      opened.splice(0).forEach((c) => c.close());
    }
  });
});

describe.each(["connect", "grpc-web"] as const)("service keys on the gateway over %s", (via) => {
  const t = setupService();
  const { auth } = t.clients(via);

  it("a dead key on a public RPC is UNAUTHENTICATED and stores nothing", async () => {
    const account = await accountWithKey(t, uniqueAccountName(`gw-dead-${via}`), ["client-address.forward"]);
    await t.app.serviceAccounts.revokeKey(account.prefix);
    for (const headers of [{ "x-service-key": account.key }, { authorization: `Bearer ${account.key}` }] as Array<Record<string, string>>) {
      await t.expectNothingStored(() =>
        expectError(auth.signUp({ email: uniqueEmail("gw-dead"), password: PASSWORD }, { headers }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" }),
      );
    }
  });

  it("a BFF's call through the gateway is named in the audit row and the log", async () => {
    const account = await accountWithKey(t, uniqueAccountName(`gw-bff-${via}`), ["client-address.forward"]);
    const signedUp = await auth.signUp({ email: uniqueEmail("gw-bff"), password: PASSWORD }, { headers: { "x-service-key": account.key, "x-request-id": `gw-bff-${via}-1` } });
    const { userId } = await t.verify(signedUp.tokens!.accessToken);
    expect(await t.db.query("SELECT caller FROM audit_events WHERE user_id = $1", [userId])).toEqual([{ caller: account.name }]);
    const line = t.logLines.find((l) => l.includes(`"requestId":"gw-bff-${via}-1"`));
    expect(JSON.parse(line!)).toMatchObject({ caller: account.name, protocol: via });
  });
});
