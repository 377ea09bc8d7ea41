// Envoy external authorization (issue 13, item 3): envoy.service.auth.v3.Authorization/Check on
// the gRPC port, spoken to as Envoy's ext_authz filter does: a grpc-js client sending CheckRequest
// messages built from the vendored Envoy protos, the x-service-key as initial metadata. What the
// upstream would receive is worked out the way Envoy applies an OK answer (see upstreamHeaders).
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { HeaderValueOption_HeaderAppendAction, type HeaderValueOption } from "../../gen/envoy/config/core/v3/base_pb.js";
import { Authorization, CheckRequestSchema, type CheckResponse, type OkHttpResponse } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { StatusCode } from "../../gen/envoy/type/v3/http_status_pb.js";
import { IDENTITY_HEADER_NAMES } from "../../src/services/forward-auth.js";
import { bearer } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { TEST_KEK, TEST_SERVICE_KEY } from "../support/service.js";
import { setupService, type TestContext } from "../support/setup.js";
import { createGrpcJsTransport } from "../support/transports.js";

const PRODUCTION = { NODE_ENV: "production", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), PUBLIC_URL: "https://id.example.com" };
/** Envoy's grpc_service.initial_metadata. */
const AS_ENVOY = { headers: { "x-service-key": TEST_SERVICE_KEY } };
const UNAUTHENTICATED = 16;

/** An Envoy client of the service's gRPC port, closed after the file. */
function envoyClient(t: TestContext) {
  let transport: ReturnType<typeof createGrpcJsTransport> | undefined;
  afterAll(() => transport?.close());
  return () => {
    transport ??= createGrpcJsTransport(t.grpcAddress);
    return createClient(Authorization, transport);
  };
}

/** The CheckRequest Envoy sends for an HTTP request with these headers (names lower-cased, as Envoy does). */
function checkRequest(headers: Record<string, string>): MessageInitShape<typeof CheckRequestSchema> {
  return {
    attributes: {
      source: { address: { address: { case: "socketAddress", value: { address: "203.0.113.7", portSpecifier: { case: "portValue", value: 51234 } } } } },
      request: {
        http: {
          id: "req-1",
          method: "GET",
          path: "/orders/42",
          host: "api.example.com",
          scheme: "https",
          protocol: "HTTP/1.1",
          headers: { ":authority": "api.example.com", ":method": "GET", ":path": "/orders/42", "user-agent": "curl/8", ...lowerCased(headers) },
        },
      },
    },
  };
}

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

function okOf(response: CheckResponse): OkHttpResponse {
  expect(response.status?.code, response.status?.message).toBe(0);
  expect(response.httpResponse.case).toBe("okResponse");
  return response.httpResponse.value as OkHttpResponse;
}

function setHeaders(options: readonly HeaderValueOption[]): Record<string, string> {
  for (const option of options) {
    // Overwrite, not append, and without the deprecated `append` field.
    expect(option.appendAction, option.header?.key).toBe(HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD);
    expect(option.append, option.header?.key).toBeUndefined();
  }
  return Object.fromEntries(options.map((o) => [o.header!.key, o.header!.value]));
}

/**
 * The identity headers the upstream receives: the client's request headers with an OK answer
 * applied in Envoy's order (source/extensions/filters/http/ext_authz/ext_authz.cc, onComplete):
 * `headers` first (OVERWRITE_IF_EXISTS_OR_ADD: set, replacing any copy), `headers_to_remove` after.
 */
function upstreamHeaders(client: Record<string, string>, ok: OkHttpResponse): Record<string, string> {
  const upstream = new Map(Object.entries(lowerCased(client)));
  for (const { header } of ok.headers) upstream.set(header!.key.toLowerCase(), header!.value);
  for (const name of ok.headersToRemove) upstream.delete(name.toLowerCase());
  return Object.fromEntries([...upstream].filter(([name]) => name.startsWith("x-identity-")));
}

function expectDenied(response: CheckResponse, challenge: string): void {
  expect(response.status?.code).toBe(UNAUTHENTICATED);
  expect(response.httpResponse.case).toBe("deniedResponse");
  if (response.httpResponse.case !== "deniedResponse") return;
  const denied = response.httpResponse.value;
  expect(denied.status?.code).toBe(StatusCode.Unauthorized);
  expect(setHeaders(denied.headers)["www-authenticate"]).toBe(challenge);
}

const NO_TOKEN = 'Bearer realm="identity"';
const INVALID_TOKEN = 'Bearer realm="identity", error="invalid_token"';

describe("Authorization/Check, as Envoy calls it", () => {
  // LOG_LEVEL=debug: a Check answered (admitted or denied) is a successful call, logged at debug
  // (test/ops/access-log.test.ts); its denial's reason is logged at info.
  const t = setupService({ env: { LOG_LEVEL: "debug" } });
  const authz = envoyClient(t);

  it("admits an active token: the person in X-Identity-* headers, every other identity header removed", async () => {
    const account = await t.signUp("ext-authz");
    const claims = decodeJwt(account.tokens.accessToken);
    const ok = okOf(await authz().check(checkRequest({ Authorization: `Bearer ${account.tokens.accessToken}` }), AS_ENVOY));
    const set = setHeaders(ok.headers);
    expect(set).toEqual({
      "x-identity-subject-kind": "user",
      "x-identity-user-id": account.userId,
      "x-identity-session-id": claims.sid,
      "x-identity-role": "user",
      "x-identity-amr": "pwd",
    });
    expect(ok.headersToRemove.sort()).toEqual(["x-identity-scope", "x-identity-service"]);
    // Between them, every identity header: none of a client's copies survives unreplaced.
    expect([...Object.keys(set), ...ok.headersToRemove].sort()).toEqual([...IDENTITY_HEADER_NAMES].sort());
    expect(upstreamHeaders({}, ok)).toEqual(set);
  });

  it("replaces or removes identity headers a client forged", async () => {
    const account = await t.signUp("ext-authz-forged");
    const forged = {
      authorization: `Bearer ${account.tokens.accessToken}`,
      "x-identity-user-id": "00000000-0000-0000-0000-000000000001",
      "x-identity-role": "admin",
      "x-identity-service": "billing",
      "X-Identity-Scope": "tokens.issue",
    };
    const ok = okOf(await authz().check(checkRequest(forged), AS_ENVOY));
    const upstream = upstreamHeaders(forged, ok);
    expect(upstream["x-identity-user-id"]).toBe(account.userId);
    expect(upstream["x-identity-role"]).toBe("user");
    expect(upstream).not.toHaveProperty("x-identity-service");
    expect(upstream).not.toHaveProperty("x-identity-scope");
  });

  it("admits a service token as a service, removing every person's header", async () => {
    const token = t.app.services.accessTokens.issueService({ service: "billing", audience: t.config.audience, scope: ["tokens.verify", "authz.check"] }).token;
    const forged = { authorization: `Bearer ${token}`, "x-identity-user-id": "00000000-0000-0000-0000-000000000001", "x-identity-amr": "mfa" };
    const ok = okOf(await authz().check(checkRequest(forged), AS_ENVOY));
    expect(setHeaders(ok.headers)).toEqual({ "x-identity-subject-kind": "service", "x-identity-service": "billing", "x-identity-scope": "tokens.verify authz.check" });
    expect(ok.headersToRemove.sort()).toEqual(["x-identity-amr", "x-identity-role", "x-identity-session-id", "x-identity-user-id"]);
    expect(upstreamHeaders(forged, ok)).toEqual({ "x-identity-subject-kind": "service", "x-identity-service": "billing", "x-identity-scope": "tokens.verify authz.check" });
  });

  it("denies a request without a bearer token: 401, a challenge without an error code, never a gRPC error", async () => {
    await t.expectUnchanged(async () => {
      for (const headers of [{}, { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }, { authorization: "Bearer" }] as Array<Record<string, string>>) {
        expectDenied(await authz().check(checkRequest(headers), AS_ENVOY), NO_TOKEN);
      }
      // A request Envoy describes without HTTP attributes (the network filter) has no token either.
      expectDenied(await authz().check({}, AS_ENVOY), NO_TOKEN);
    });
  });

  it("denies a garbage, forged or refresh token: 401 invalid_token, no identity header set", async () => {
    const account = await t.signUp("ext-authz-bad");
    const [h, p] = account.tokens.accessToken.split(".");
    await t.expectUnchanged(async () => {
      for (const token of ["garbage", `${h}.${p}.AAAA`, account.tokens.refreshToken]) {
        const response = await authz().check(checkRequest({ authorization: `Bearer ${token}` }), AS_ENVOY);
        expectDenied(response, INVALID_TOKEN);
        if (response.httpResponse.case === "deniedResponse") {
          expect(Object.keys(setHeaders(response.httpResponse.value.headers)).filter((k) => k.startsWith("x-identity-"))).toEqual([]);
          expect(JSON.parse(response.httpResponse.value.body)).toEqual({ error: "invalid_token" });
        }
      }
    });
  });

  it("denies a token within 1 s of its logout", async () => {
    const account = await t.signUp("ext-authz-logout");
    const request = create(CheckRequestSchema, checkRequest({ authorization: `Bearer ${account.tokens.accessToken}` }));
    expect((await authz().check(request, AS_ENVOY)).status?.code).toBe(0);
    await t.clients("grpc").auth.logout({}, bearer(account.tokens.accessToken));
    const loggedOut = Date.now();
    let response = await authz().check(request, AS_ENVOY);
    while (response.status?.code === 0 && Date.now() - loggedOut < 1_000) response = await authz().check(request, AS_ENVOY);
    expectDenied(response, INVALID_TOKEN);
  });

  it("reads raw headers (encode_raw_headers: header_map, raw_value) and refuses two Authorization headers", async () => {
    const account = await t.signUp("ext-authz-raw");
    const raw = (values: string[]) => ({
      attributes: {
        request: {
          http: {
            method: "GET",
            path: "/",
            headerMap: { headers: [{ key: ":path", rawValue: Buffer.from("/") }, ...values.map((v) => ({ key: "authorization", rawValue: Buffer.from(v) }))] },
          },
        },
      },
    });
    const ok = okOf(await authz().check(raw([`Bearer ${account.tokens.accessToken}`]), AS_ENVOY));
    expect(setHeaders(ok.headers)["x-identity-user-id"]).toBe(account.userId);
    expectDenied(await authz().check(raw([`Bearer ${account.tokens.accessToken}`, "Bearer garbage"]), AS_ENVOY), INVALID_TOKEN);
  });

  it("goes through the call policy: one log line per call, a denial's reason logged, counted in the RPC metrics", async () => {
    const requestId = `ext-authz-${Date.now()}`;
    await authz().check(checkRequest({ authorization: "Bearer garbage" }), { headers: { ...AS_ENVOY.headers, "x-request-id": requestId } });
    const lines = t.logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ level: "debug", msg: "rpc", rpc: "envoy.service.auth.v3.Authorization/Check", status: "OK", requestId }));
    expect(lines).toContainEqual(expect.objectContaining({ level: "info", msg: "ext_authz refused", reason: "MALFORMED", status: 401 }));
    const metrics = await (await fetch(t.metricsUrl)).text();
    expect(metrics).toMatch(/identity_rpc_requests_total\{[^}]*service="envoy\.service\.auth\.v3\.Authorization",method="Check",code="OK",transport="grpc"[^}]*\} [1-9]/);
  });

  it.each(["connect", "grpc-web"] as const)("is not served by the gateway (over %s)", async (name) => {
    const account = await t.signUp(`ext-authz-${name}`);
    const client = createClient(Authorization, t.clients(name).transport);
    await expectError(client.check(checkRequest({ authorization: `Bearer ${account.tokens.accessToken}` }), AS_ENVOY), { code: Code.Unimplemented });
  });
});

describe("Authorization/Check callers (production mode)", () => {
  const t = setupService({ env: PRODUCTION });
  const authz = envoyClient(t);

  it("refuses an Envoy without a service key or with a wrong one, before looking at the request", async () => {
    const account = await t.signUp("ext-authz-prod");
    const request = checkRequest({ authorization: `Bearer ${account.tokens.accessToken}` });
    await t.expectUnchanged(async () => {
      await expectError(authz().check(request), { code: Code.Unauthenticated, reason: "SERVICE_KEY_REQUIRED" });
      await expectError(authz().check(request, { headers: { "x-service-key": "not-the-service-key-0123456789abcdef" } }), {
        code: Code.Unauthenticated,
        reason: "SERVICE_KEY_INVALID",
      });
    });
    expect(okOf(await authz().check(request, AS_ENVOY)).headers.length).toBe(5);
  });
});
