// The client library in local mode (issue 13, item 2) against a real identity service: it
// follows WatchRevocations and verifies from memory. A Logout makes every middleware of the
// sample backend refuse the token within 1 s; 1,000 verifications make no VerifyToken call (read
// from the service's /metrics); with the stream down longer than staleAfterMs it falls back to
// VerifyToken; with both down it fails closed. The stream goes down for real, through a TCP proxy.
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from "../../src/client/index.js";
import { bearer } from "../support/accounts.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { backendCaller, MIDDLEWARES, type Answer } from "./backend-calls.js";
import { startSampleBackends, type SampleBackends } from "./sample-backend.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

const t = setupService();
const { auth } = t.clients("grpc");

const STALE_AFTER_MS = 800;
const registry = new Registry();
const closers: Array<() => unknown> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

function localOptions(overrides: Partial<TokenVerifierOptions> = {}): TokenVerifierOptions {
  return {
    address: t.grpcAddress,
    serviceKey: TEST_SERVICE_KEY,
    mode: "local",
    issuer: t.config.issuer,
    audience: t.config.audience,
    staleAfterMs: STALE_AFTER_MS,
    heartbeatSec: 1,
    backoff: { initialMs: 50, maxMs: 200 },
    ...overrides,
  };
}

async function started(options: TokenVerifierOptions): Promise<TokenVerifier> {
  const verifier = createTokenVerifier(options);
  closers.push(() => verifier.close());
  await verifier.ready(5000);
  return verifier;
}

interface Setup {
  readonly proxy: TcpProxy;
  readonly verifier: TokenVerifier;
  readonly backends: SampleBackends;
}

/** The stream goes through a proxy the tests can cut; VerifyToken (the fallback) goes direct. */
const setup = t.prepare(async (): Promise<Setup> => {
  const proxy = await startTcpProxy(t.grpcAddress);
  closers.push(() => proxy.close());
  const verifier = await started(localOptions({ watchAddress: proxy.address, registry }));
  const backends = await startSampleBackends(verifier);
  closers.push(() => backends.close());
  return { proxy, verifier, backends };
});

/** identity_rpc_requests_total of VerifyToken, every code and transport, from the service's /metrics. */
async function verifyTokenCalls(): Promise<number> {
  const text = await (await fetch(t.metricsUrl)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("identity_rpc_requests_total{") && line.includes('service="identity.v1.TokenService"') && line.includes('method="VerifyToken"')) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

/** A counter's value, or a histogram's count, from the verifier's registry. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const values = (await registry.getSingleMetric(name)!.get()).values as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>;
  return values
    .filter((v) => (v.metricName === undefined || v.metricName === `${name}_count`) && Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((n, v) => n + v.value, 0);
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = await read();
  }
  return value;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("local mode", () => {
  it("verifies 1,000 tokens from memory with zero VerifyToken calls", async () => {
    const { verifier } = setup();
    const account = await t.signUp("local-thousand");
    const token = account.tokens.accessToken;
    const localBefore = await metric("identity_client_local_verifications_total");
    const before = await verifyTokenCalls();
    for (let i = 0; i < 1000; i++) {
      const result = await verifier.verify(token);
      if (!result.ok) throw new Error(`refused: ${JSON.stringify(result)}`);
    }
    expect(await verifyTokenCalls()).toBe(before);
    expect(await metric("identity_client_local_verifications_total")).toBe(localBefore + 1000);
    // The count above is read from the right place: one VerifyToken call moves it.
    await t.verify(token);
    expect(await verifyTokenCalls()).toBe(before + 1);
  });

  it("gives the same principal as VerifyToken, and refuses a forged token", async () => {
    const { verifier } = setup();
    const account = await t.signUp("local-principal");
    const token = account.tokens.accessToken;
    const local = await verifier.verify(token);
    const remote = createTokenVerifier({ address: t.grpcAddress, serviceKey: TEST_SERVICE_KEY, mode: "remote" });
    closers.push(() => remote.close());
    expect(local.ok).toBe(true);
    expect(local).toEqual(await remote.verify(token));
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, role: "admin" })).toString("base64url")}.${s}`;
    expect(await verifier.verify(forged)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "BAD_SIGNATURE" });
    expect(await verifier.verify(`${h}.${p}.${s}=`)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "MALFORMED" });
    expect(await verifier.verify(token, { audience: "another" })).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "WRONG_AUDIENCE" });
  });

  it("reads auth_time, which a refresh keeps while iat moves, the same way as VerifyToken", async () => {
    const { verifier } = setup();
    const account = await t.signUp("local-auth-time");
    const claims = JSON.parse(Buffer.from(account.tokens.accessToken.split(".")[1]!, "base64url").toString()) as { auth_time: number; iat: number };
    expect(typeof claims.auth_time).toBe("number");
    await sleep(1100);
    const refreshed = (await t.clients("grpc").tokens.refreshToken({ refreshToken: account.tokens.refreshToken })).tokens!;
    const local = await verifier.verify(refreshed.accessToken);
    if (!local.ok || local.principal.kind !== "user") throw new Error(JSON.stringify(local));
    expect(local.principal.authTime.getTime()).toBe(claims.auth_time * 1000);
    expect(local.principal.issuedAt.getTime()).toBeGreaterThan(claims.iat * 1000);
    const remote = createTokenVerifier({ address: t.grpcAddress, serviceKey: TEST_SERVICE_KEY, mode: "remote" });
    closers.push(() => remote.close());
    expect(await remote.verify(refreshed.accessToken)).toEqual(local);
    // A route wanting a sign-in younger than the session asks for a step-up, refreshed or not.
    expect(await verifier.verify(refreshed.accessToken, { maxAuthAge: 1 })).toEqual({ ok: false, reason: "step_up_required", maxAge: 1 });
    expect((await verifier.verify(refreshed.accessToken, { maxAuthAge: 60 })).ok).toBe(true);
  });

  it("refuses every token of a deleted account within 1 s (the subject is disabled), from memory", async () => {
    const { verifier } = setup();
    const account = await t.signUp("local-deleted");
    const second = await t.login(account.email);
    for (const token of [account.tokens.accessToken, second.accessToken]) expect((await verifier.verify(token)).ok).toBe(true);
    const calls = await verifyTokenCalls();
    await auth.deleteAccount({ password: account.password }, bearer(account.tokens.accessToken));
    const deleted = Date.now();
    const result = await until(() => verifier.verify(second.accessToken), (r) => !r.ok, 1000);
    expect(Date.now() - deleted).toBeLessThan(1000);
    expect(result).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "USER_DISABLED" });
    expect(await verifier.verify(account.tokens.accessToken)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "USER_DISABLED" });
    expect(await verifyTokenCalls()).toBe(calls);
  });

  it("refuses a disabled service account's tokens within 1 s, from memory, and not again after an enable", async () => {
    const { verifier } = setup();
    const billing = await accountWithKey(t, uniqueAccountName("local-billing"), ["tokens.issue"], { audiences: [t.config.audience] });
    const { accessToken } = await t.clients("grpc").tokens.issueServiceToken({ audience: t.config.audience }, { headers: { "x-service-key": billing.key } });
    const policy = { allowServices: true };
    expect(await verifier.verify(accessToken, policy)).toMatchObject({ ok: true, principal: { kind: "service", service: billing.name } });
    const calls = await verifyTokenCalls();
    await t.app.serviceAccounts.disable(billing.name);
    const disabled = Date.now();
    expect(await until(() => verifier.verify(accessToken, policy), (r) => !r.ok, 1000)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "USER_DISABLED" });
    expect(Date.now() - disabled).toBeLessThan(1000);
    // Enabled again (within the same second, most likely): the token issued before stays refused.
    await t.app.serviceAccounts.enable(billing.name);
    expect(await until(() => verifier.verify(accessToken, policy), (r) => !r.ok && r.inactiveReason === "TOKEN_REVOKED", 1000)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "TOKEN_REVOKED" });
    expect(await verifyTokenCalls()).toBe(calls);
  });

  describe.each(MIDDLEWARES)("%s middleware", (middleware) => {
    it("refuses a token within 1 s of its Logout", async () => {
      const { backends } = setup();
      const caller = backendCaller(backends, middleware);
      closers.push(() => caller.close());
      const account = await t.signUp(`local-logout-${middleware}`);
      const token = account.tokens.accessToken;
      const ok = await caller.call("whoami", token);
      expect(ok.status).toBe(200);
      expect(ok.principal).toMatchObject({ kind: "user", userId: account.userId });
      const observed = await metric("identity_client_revocation_propagation_seconds");
      await auth.logout({}, bearer(token));
      const loggedOut = Date.now();
      const answer = await until<Answer>(() => caller.call("whoami", token), (a) => a.status !== 200, 1000);
      expect(Date.now() - loggedOut).toBeLessThan(1000);
      expect(answer).toEqual({ status: 401, challenge: 'Bearer error="invalid_token"', principal: null });
      expect(await metric("identity_client_revocation_propagation_seconds")).toBeGreaterThan(observed);
    });
  });

  it("keeps verifying from memory for staleAfterMs after the stream went down, then falls back to VerifyToken, then returns to memory", async () => {
    const { proxy, verifier } = setup();
    const account = await t.signUp("local-stale");
    const token = account.tokens.accessToken;
    expect(verifier.stream?.connected).toBe(true);
    proxy.mode("refuse");
    try {
      await until(async () => verifier.stream?.connected, (c) => c === false, 2000);
      expect(verifier.stream?.connected).toBe(false);
      const fallbacks = await metric("identity_client_remote_verifications_total", { cause: "fallback" });
      const calls = await verifyTokenCalls();
      expect((await verifier.verify(token)).ok).toBe(true);
      expect(await verifyTokenCalls()).toBe(calls);

      await sleep(STALE_AFTER_MS + 100);
      expect((await verifier.verify(token)).ok).toBe(true);
      expect(await metric("identity_client_remote_verifications_total", { cause: "fallback" })).toBe(fallbacks + 1);
      expect(await verifyTokenCalls()).toBe(calls + 1);
      // What the stream would have told: the fallback sees it.
      await auth.logout({}, bearer(token));
      expect(await verifier.verify(token)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "SESSION_REVOKED" });
    } finally {
      proxy.mode("pass");
    }
    await verifier.ready(5000);
    const other = await t.signUp("local-back");
    const calls = await verifyTokenCalls();
    expect((await verifier.verify(other.tokens.accessToken)).ok).toBe(true);
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "SESSION_REVOKED" });
    expect(await verifyTokenCalls()).toBe(calls);
  });

  it("tells a silent stream from a live one (heartbeat watchdog) and resumes when it speaks again", async () => {
    const { proxy, verifier } = setup();
    await verifier.ready(5000);
    proxy.mode("freeze");
    try {
      // Heartbeats every 1 s: silent for two of them and a second, the stream is declared down.
      const down = await until(async () => verifier.stream?.connected, (c) => c === false, 5000);
      expect(down).toBe(false);
    } finally {
      proxy.mode("pass");
    }
    await verifier.ready(5000);
    expect(verifier.stream?.connected).toBe(true);
  });

  it("fails closed (unavailable, 503 / UNAVAILABLE) when the stream and VerifyToken are both down", async () => {
    const proxy = await startTcpProxy(t.grpcAddress);
    closers.push(() => proxy.close());
    const verifier = await started(localOptions({ address: proxy.address }));
    const backends = await startSampleBackends(verifier);
    closers.push(() => backends.close());
    const account = await t.signUp("local-down");
    const token = account.tokens.accessToken;
    expect((await verifier.verify(token)).ok).toBe(true);
    proxy.mode("refuse");
    await until(async () => verifier.stream?.connected, (c) => c === false, 2000);
    // Within staleAfterMs the memory still answers.
    expect((await verifier.verify(token)).ok).toBe(true);
    await sleep(STALE_AFTER_MS + 100);
    expect(await verifier.verify(token)).toEqual({ ok: false, reason: "unavailable" });
    for (const middleware of MIDDLEWARES) {
      const caller = backendCaller(backends, middleware);
      expect(await caller.call("whoami", token), middleware).toEqual({ status: 503, challenge: null, principal: null });
      caller.close();
    }
  });

  it("needs the issuer", () => {
    expect(() => createTokenVerifier({ address: t.grpcAddress, mode: "local" })).toThrow(/issuer/);
  });
});
