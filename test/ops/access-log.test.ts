// The default configuration is the fast path (issue 14, item 1): a successful per-request
// verification (VerifyToken, Envoy's Authorization/Check) writes no line at the default level,
// failures are logged as ever, LOG_LEVEL=debug shows every success, and ACCESS_LOG_SAMPLE_RATE
// logs that fraction of them at info. Every other RPC's success keeps its info line.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Authorization } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { apiServices, vendoredServices } from "../../src/services/routes.js";
import { successLevel } from "../../src/services/policy.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY, TEST_SERVICE_NAME } from "../support/service.js";
import { setupService, type TestContext } from "../support/setup.js";

const AS_BACKEND = { "x-service-key": TEST_SERVICE_KEY };
const VERIFY = "identity.v1.TokenService/VerifyToken";
const CHECK = "envoy.service.auth.v3.Authorization/Check";

/** The parsed log lines of the calls that carried `requestId`. */
function linesOf(t: TestContext, requestId: string): Array<Record<string, unknown>> {
  return t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === requestId);
}

/** One successful VerifyToken and one successful Envoy Check, each with its request id. */
async function verifyAndCheck(t: TestContext, accessToken: string, tag: string): Promise<void> {
  const grpc = t.clients("grpc");
  expect((await grpc.tokens.verifyToken({ token: accessToken }, { headers: { ...AS_BACKEND, "x-request-id": `${tag}-verify` } })).active).toBe(true);
  const checked = await grpc.client(Authorization).check(
    { attributes: { request: { http: { method: "GET", path: "/orders/42", headers: { authorization: `Bearer ${accessToken}` } } } } },
    { headers: { ...AS_BACKEND, "x-request-id": `${tag}-check` } },
  );
  expect(checked.httpResponse.case).toBe("okResponse");
}

it("only the unary internal verification RPCs log their success at debug; every other RPC at info", () => {
  const levels = Object.fromEntries(
    [...apiServices, ...vendoredServices].flatMap((service) => service.methods).map((method) => [`${method.parent.typeName}/${method.name}`, successLevel(method)]),
  );
  const quiet = Object.entries(levels).filter(([, level]) => level !== "info").map(([rpc, level]) => `${rpc}=${level}`);
  expect(quiet.sort()).toEqual([`${CHECK}=debug`, `${VERIFY}=debug`]);
  // WatchRevocations holds tokens.verify too, but a stream's end is not per request.
  expect(levels["identity.v1.TokenService/WatchRevocations"]).toBe("info");
});

describe.each([
  ["by default", {}],
  ["with ACCESS_LOG_SAMPLE_RATE=0", { ACCESS_LOG_SAMPLE_RATE: "0" }],
])("at LOG_LEVEL=info %s", (_, env) => {
  const t = setupService({ env: { LOG_LEVEL: "info", ...env } });
  const accessToken = t.prepare(async () => (await t.signUp("quiet-default")).tokens.accessToken);

  it("a successful VerifyToken or Envoy Check writes no line", async () => {
    for (let i = 0; i < 5; i++) await verifyAndCheck(t, accessToken(), `quiet-${i}`);
    for (let i = 0; i < 5; i++) {
      expect(linesOf(t, `quiet-${i}-verify`)).toEqual([]);
      expect(linesOf(t, `quiet-${i}-check`)).toEqual([]);
    }
    expect(t.logLines.filter((l) => l.includes(VERIFY) || l.includes(CHECK))).toEqual([]);
  });

  it("a failed VerifyToken (a bad service key) is still logged at info, with its reason", async () => {
    await expectError(
      t.clients("grpc").tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": `isk_${"a".repeat(12)}_${"b".repeat(43)}`, "x-request-id": "quiet-bad-key" } }),
      { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" },
    );
    const lines = linesOf(t, "quiet-bad-key");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "info", msg: "rpc", rpc: VERIFY, status: "Unauthenticated", reason: "SERVICE_KEY_INVALID", caller: "anonymous" });
  });

  it("a successful VerifyToken echoes the caller's request id and makes none of its own; a failed one answers with one", async () => {
    const grpc = t.clients("grpc");
    const headersOf = async (headers: Record<string, string>, token = accessToken()) => {
      let id: string | null | undefined;
      const answer = await grpc.tokens.verifyToken({ token }, { headers, onHeader: (h) => (id = h.get("x-request-id")) }).catch((err: unknown) => err);
      return { answer, id };
    };
    const echoed = await headersOf({ ...AS_BACKEND, "x-request-id": "quiet-echo-1" });
    expect(echoed.id).toBe("quiet-echo-1");
    const plain = await headersOf(AS_BACKEND);
    expect((plain.answer as { active: boolean }).active).toBe(true);
    expect(plain.id).toBeNull();
    // An inactive token is an answer, not a failure: no id either.
    const inactive = await headersOf(AS_BACKEND, "not-a-token");
    expect((inactive.answer as { active: boolean }).active).toBe(false);
    expect(inactive.id).toBeNull();
    // A failure is logged, and its id is in the trailers of the refusal.
    const refused = await grpc.tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": `isk_${"c".repeat(12)}_${"d".repeat(43)}` } }).then(
      () => undefined,
      (err: unknown) => err as { metadata: Headers },
    );
    const id = refused?.metadata.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(linesOf(t, id!)).toMatchObject([{ rpc: VERIFY, reason: "SERVICE_KEY_INVALID" }]);
  });

  it("another RPC's success still writes its line at info", async () => {
    await t.clients("grpc").tokens.getJwks({}, { headers: { "x-request-id": "quiet-jwks" } });
    expect(linesOf(t, "quiet-jwks")).toMatchObject([{ level: "info", msg: "rpc", rpc: "identity.v1.TokenService/GetJwks", status: "OK" }]);
  });
});

describe("at LOG_LEVEL=debug", () => {
  const t = setupService({ env: { LOG_LEVEL: "debug" } });
  const accessToken = t.prepare(async () => (await t.signUp("quiet-debug")).tokens.accessToken);

  it("every successful VerifyToken and Envoy Check writes its line at debug, naming its caller", async () => {
    await verifyAndCheck(t, accessToken(), "debug");
    expect(linesOf(t, "debug-verify")).toMatchObject([{ level: "debug", msg: "rpc", rpc: VERIFY, status: "OK", protocol: "grpc", caller: TEST_SERVICE_NAME }]);
    expect(linesOf(t, "debug-check")).toMatchObject([{ level: "debug", msg: "rpc", rpc: CHECK, status: "OK", caller: TEST_SERVICE_NAME }]);
    expect(linesOf(t, "debug-verify")[0]).not.toHaveProperty("sampleRate");
  });
});

describe("with ACCESS_LOG_SAMPLE_RATE=1 at LOG_LEVEL=info", () => {
  const t = setupService({ env: { LOG_LEVEL: "info", ACCESS_LOG_SAMPLE_RATE: "1" } });
  const accessToken = t.prepare(async () => (await t.signUp("quiet-sampled")).tokens.accessToken);

  it("every successful VerifyToken and Envoy Check writes its line at info, marked with the rate", async () => {
    for (let i = 0; i < 5; i++) await verifyAndCheck(t, accessToken(), `sampled-${i}`);
    for (let i = 0; i < 5; i++) {
      expect(linesOf(t, `sampled-${i}-verify`)).toMatchObject([{ level: "info", msg: "rpc", rpc: VERIFY, status: "OK", caller: TEST_SERVICE_NAME, sampleRate: 1 }]);
      expect(linesOf(t, `sampled-${i}-check`)).toMatchObject([{ level: "info", msg: "rpc", rpc: CHECK, status: "OK", caller: TEST_SERVICE_NAME, sampleRate: 1 }]);
    }
  });
});
