// The client library's middleware (issue 13, item 2) in front of a sample backend, against a
// real identity service, remote mode (VerifyToken): for grpc-js, Connect, Express and Fastify,
// a valid token passes with its principal; a missing, garbage or revoked token is refused with
// 401 / UNAUTHENTICATED and its challenge; step-up (amr, auth age) is told apart from a role
// (403 / PERMISSION_DENIED); a service token passes only where services are allowed.
import { generateSync } from "otplib";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { createTokenVerifier, type TokenVerifier } from "../../src/client/index.js";
import { bearer } from "../support/accounts.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { backendCaller, MIDDLEWARES, type Answer } from "./backend-calls.js";
import { startSampleBackends, type SampleBackends } from "./sample-backend.js";

const t = setupService();
const { auth, mfa } = t.clients("grpc");

let verifier: TokenVerifier | undefined;
let backends: SampleBackends | undefined;
const registry = new Registry();
const running = t.prepare(async () => {
  verifier = createTokenVerifier({ address: t.grpcAddress, serviceKey: TEST_SERVICE_KEY, mode: "remote", registry });
  backends = await startSampleBackends(verifier);
  return backends;
});
afterAll(async () => {
  await backends?.close();
  verifier?.close();
});

const INVALID = 'Bearer error="invalid_token"';
const STEP_UP = /^Bearer error="insufficient_user_authentication", error_description="[^"]+"/;

/** Polls `call` until `done` holds, for at most `ms`; returns the last answer. */
async function until(call: () => Promise<Answer>, done: (a: Answer) => boolean, ms: number): Promise<Answer> {
  const deadline = Date.now() + ms;
  let answer = await call();
  while (!done(answer) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    answer = await call();
  }
  return answer;
}

describe.each(MIDDLEWARES)("%s middleware, remote mode", (middleware) => {
  const caller = () => backendCaller(running(), middleware);

  it("lets a person's token through and hands the handler the principal", async () => {
    const account = await t.signUp(`client-${middleware}`);
    const answer = await caller().call("whoami", account.tokens.accessToken);
    expect(answer.status).toBe(200);
    const verified = await t.verify(account.tokens.accessToken);
    expect(answer.principal).toMatchObject({
      kind: "user",
      subject: account.userId,
      userId: account.userId,
      sessionId: verified.sessionId,
      tokenId: verified.tokenId,
      role: "user",
      amr: verified.amr,
    });
    expect(verified.amr.length).toBeGreaterThan(0);
  });

  it("lets an open route through without a token, with no principal", async () => {
    expect(await caller().call("open")).toEqual({ status: 200, challenge: null, principal: null });
  });

  it("refuses a missing token with a bare Bearer challenge, a garbage or forged one with invalid_token", async () => {
    const c = caller();
    expect(await c.call("whoami")).toEqual({ status: 401, challenge: "Bearer", principal: null });
    expect(await c.call("whoami", undefined, "Basic dXNlcjpwYXNz")).toEqual({ status: 401, challenge: "Bearer", principal: null });
    expect(await c.call("whoami", "garbage")).toEqual({ status: 401, challenge: INVALID, principal: null });
    const account = await t.signUp(`client-forged-${middleware}`);
    const [header, payload] = account.tokens.accessToken.split(".");
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, "base64url").toString()), role: "admin" })).toString("base64url")}.${account.tokens.accessToken.split(".")[2]}`;
    expect(await c.call("whoami", forged)).toEqual({ status: 401, challenge: INVALID, principal: null });
    expect(await c.call("admin", forged)).toEqual({ status: 401, challenge: INVALID, principal: null });
  });

  it("refuses a token whose session was logged out (within the 1 s cache bound)", async () => {
    const account = await t.signUp(`client-logout-${middleware}`);
    const token = account.tokens.accessToken;
    const c = caller();
    expect((await c.call("whoami", token)).status).toBe(200);
    await auth.logout({}, bearer(token));
    const loggedOut = Date.now();
    const answer = await until(() => c.call("whoami", token), (a) => a.status !== 200, 3000);
    expect(answer).toEqual({ status: 401, challenge: INVALID, principal: null });
    expect(Date.now() - loggedOut).toBeLessThan(1500);
  });

  it("asks for a step-up (RFC 9470) on a second-factor route and on a too-old authentication, and lets an MFA session through", async () => {
    const c = caller();
    const account = await t.signUp(`client-mfa-${middleware}`);
    const password = await c.call("mfa", account.tokens.accessToken);
    expect(password.status).toBe(401);
    expect(password.challenge).toMatch(STEP_UP);
    const old = await c.call("recent", account.tokens.accessToken);
    expect(old.status).toBe(401);
    expect(old.challenge).toMatch(STEP_UP);
    expect(old.challenge).toContain("max_age=0");

    // Enrol TOTP, then sign in with the password and a backup code: the session's amr holds "mfa".
    const setup = await mfa.setupTotp({}, bearer(account.tokens.accessToken));
    const { backupCodes } = await mfa.confirmTotp({ code: generateSync({ secret: setup.secret }) }, bearer(account.tokens.accessToken));
    const login = await auth.login({ identifier: account.email, password: account.password });
    if (login.result.case !== "mfaChallenge") throw new Error("expected an MFA challenge");
    const done = await mfa.verifyMfa({ challengeToken: login.result.value.challengeToken, code: { case: "backupCode", value: backupCodes[0]! } });
    const strong = await c.call("mfa", done.tokens!.accessToken);
    expect(strong.status).toBe(200);
    expect(strong.principal?.amr).toContain("mfa");
    // A second factor does not make an authentication recent: still a step-up at max_age=0.
    expect((await c.call("recent", done.tokens!.accessToken)).challenge).toMatch(STEP_UP);
  });

  it("refuses a person without the role with 403 insufficient_scope, and lets an admin through", async () => {
    const c = caller();
    const account = await t.signUp(`client-role-${middleware}`);
    expect(await c.call("admin", account.tokens.accessToken)).toEqual({ status: 403, challenge: 'Bearer error="insufficient_scope"', principal: null });
    await t.db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [account.userId]);
    const admin = await t.login(account.email);
    const answer = await c.call("admin", admin.accessToken);
    expect(answer.status).toBe(200);
    expect(answer.principal).toMatchObject({ kind: "user", userId: account.userId, role: "admin" });
  });

  it("lets a service token through only where services are allowed and its audience is named", async () => {
    const c = caller();
    const token = t.app.services.accessTokens.issueService({ service: "billing", audience: "sample", scope: ["reports.read"] }).token;
    const answer = await c.call("service", token);
    expect(answer.status).toBe(200);
    expect(answer.principal).toMatchObject({ kind: "service", subject: "service:billing", service: "billing", scope: ["reports.read"] });
    // Elsewhere its audience is not the one expected (the identity service's own).
    expect(await c.call("whoami", token)).toEqual({ status: 401, challenge: INVALID, principal: null });
    // And a person's token is not for the audience "sample".
    const account = await t.signUp(`client-svc-${middleware}`);
    expect(await c.call("service", account.tokens.accessToken)).toEqual({ status: 401, challenge: INVALID, principal: null });
  });
});

describe("remote mode", () => {
  const count = async (cause: string) =>
    (await registry.getSingleMetric("identity_client_remote_verifications_total")!.get()).values.find((v) => v.labels.cause === cause)?.value ?? 0;

  it("caches an answer: the same token twice within the bound makes one VerifyToken call", async () => {
    running();
    const account = await t.signUp("client-cache");
    const before = await count("remote");
    const first = await verifier!.verify(account.tokens.accessToken);
    const second = await verifier!.verify(account.tokens.accessToken);
    expect(first).toEqual(second);
    expect(first.ok).toBe(true);
    expect(await count("remote")).toBe(before + 1);
  });

  it("names the inactive reason of a refused token", async () => {
    running();
    const account = await t.signUp("client-reason");
    await auth.logout({}, bearer(account.tokens.accessToken));
    expect(await verifier!.verify(account.tokens.accessToken)).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "SESSION_REVOKED" });
    expect(await verifier!.verify("a.b.c")).toEqual({ ok: false, reason: "invalid_token", inactiveReason: "MALFORMED" });
    expect(await verifier!.verify("")).toEqual({ ok: false, reason: "missing_token" });
  });

  it("fails closed (unavailable, 503 / UNAVAILABLE) when the identity service cannot be reached", async () => {
    const account = await t.signUp("client-down");
    const down = createTokenVerifier({ address: "127.0.0.1:1", serviceKey: TEST_SERVICE_KEY, mode: "remote", timeoutMs: 300 });
    const downBackends = await startSampleBackends(down);
    try {
      expect(await down.verify(account.tokens.accessToken)).toEqual({ ok: false, reason: "unavailable" });
      for (const middleware of MIDDLEWARES) {
        const caller = backendCaller(downBackends, middleware);
        expect(await caller.call("whoami", account.tokens.accessToken), middleware).toEqual({ status: 503, challenge: null, principal: null });
        caller.close();
      }
    } finally {
      await downBackends.close();
      down.close();
    }
  });
});
