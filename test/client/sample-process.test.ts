// The sample backend as a process of its own (issue 13, item 2: "a sample backend process under
// test/ uses each middleware against a real identity service"): sample-backend-main.ts, spawned
// with node and the tsx loader, importing grpc-identity/client by package name and configured by
// IDENTITY_* variables only. In local mode, through each middleware (grpc-js, Connect, Express,
// Fastify): a valid token passes with its principal and no VerifyToken call, a missing or garbage
// token is refused with 401 / UNAUTHENTICATED and its challenge, and a Logout makes the backend
// refuse the token within 1 s. In remote mode a valid token passes through each middleware by
// VerifyToken. Both processes stop on SIGTERM with exit code 0.
import { afterAll, describe, expect, it } from "vitest";
import { bearer } from "../support/accounts.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { backendCaller, MIDDLEWARES, type Answer, type BackendCaller, type Middleware } from "./backend-calls.js";
import { spawnSampleBackend, type SampleProcess } from "./sample-process.js";

const t = setupService();
const { auth } = t.clients("grpc");
const INVALID = 'Bearer error="invalid_token"';

const callers: BackendCaller[] = [];
let processes: SampleProcess[] = [];
afterAll(async () => {
  for (const caller of callers) caller.close();
  // Only if a test failed before the stop test ran.
  for (const p of processes) p.child.kill("SIGKILL");
});

/** Both modes, started side by side (each is a node process with the tsx loader). */
const started = t.prepare(async () => {
  const common = { address: t.grpcAddress, serviceKey: TEST_SERVICE_KEY, issuer: t.config.issuer, audience: t.config.audience };
  const [local, remote] = await Promise.all([spawnSampleBackend({ ...common, mode: "local" }), spawnSampleBackend({ ...common, mode: "remote" })]);
  processes = [local, remote];
  return { local, remote };
});

function caller(backend: SampleProcess, middleware: Middleware): BackendCaller {
  const c = backendCaller(backend, middleware);
  callers.push(c);
  return c;
}

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

async function until(read: () => Promise<Answer>, done: (answer: Answer) => boolean, ms: number): Promise<Answer> {
  const deadline = Date.now() + ms;
  let answer = await read();
  while (!done(answer) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    answer = await read();
  }
  return answer;
}

describe("the sample backend process", () => {
  it("imports the client library by package name, from the build", () => {
    const { local, remote } = started();
    for (const p of [local, remote]) expect(p.library).toMatch(/\/dist\/client\/index\.js$/);
  });

  describe.each(MIDDLEWARES)("local mode, %s middleware", (middleware) => {
    it("passes a valid token with its principal, with no VerifyToken call", async () => {
      const c = caller(started().local, middleware);
      const account = await t.signUp(`sample-local-${middleware}`);
      const calls = await verifyTokenCalls();
      const answer = await c.call("whoami", account.tokens.accessToken);
      expect(answer.status).toBe(200);
      expect(answer.principal).toMatchObject({ kind: "user", subject: account.userId, userId: account.userId });
      expect(await verifyTokenCalls()).toBe(calls);
    });

    it("refuses a missing token with a bare Bearer challenge and a garbage one with invalid_token", async () => {
      const c = caller(started().local, middleware);
      expect(await c.call("whoami")).toEqual({ status: 401, challenge: "Bearer", principal: null });
      expect(await c.call("whoami", "garbage")).toEqual({ status: 401, challenge: INVALID, principal: null });
      expect(await c.call("open")).toEqual({ status: 200, challenge: null, principal: null });
    });

    it("refuses a token within 1 s of its Logout", async () => {
      const c = caller(started().local, middleware);
      const account = await t.signUp(`sample-logout-${middleware}`);
      const token = account.tokens.accessToken;
      expect((await c.call("whoami", token)).status).toBe(200);
      await auth.logout({}, bearer(token));
      const loggedOut = Date.now();
      const answer = await until(() => c.call("whoami", token), (a) => a.status !== 200, 1000);
      expect(Date.now() - loggedOut).toBeLessThan(1000);
      expect(answer).toEqual({ status: 401, challenge: INVALID, principal: null });
    });
  });

  describe.each(MIDDLEWARES)("remote mode, %s middleware", (middleware) => {
    it("passes a valid token with its principal, by VerifyToken", async () => {
      const c = caller(started().remote, middleware);
      const account = await t.signUp(`sample-remote-${middleware}`);
      const calls = await verifyTokenCalls();
      const answer = await c.call("whoami", account.tokens.accessToken);
      expect(answer.status).toBe(200);
      expect(answer.principal).toMatchObject({ kind: "user", subject: account.userId, userId: account.userId });
      expect(await verifyTokenCalls()).toBe(calls + 1);
      expect(await c.call("whoami", "garbage")).toEqual({ status: 401, challenge: INVALID, principal: null });
    });
  });

  it("stops on SIGTERM with exit code 0 (servers and verifier closed)", async () => {
    const { local, remote } = started();
    const codes = await Promise.all([local.stop(), remote.stop()]);
    processes = [];
    expect(codes).toEqual([0, 0]);
  });
});
