// Two tabs refreshing one session at once: one wins, the other presented a token spent a moment
// ago. Within REFRESH_REUSE_GRACE_MS that is REFRESH_TOKEN_CONCURRENT (ABORTED, retry with the
// newest token) and the session lives on; after the window it is reuse and ends the session.
import { Code, ConnectError, createClient, type CallOptions } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { InactiveReason, TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { auditRows, bearer, PASSWORD, sessionRows, uniqueEmail, signUp, type TokenClient } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const clock = new ManualClock();
// The default window (test/support/service.ts turns it off for the older suites).
const t = setupService({ clock, env: { REFRESH_REUSE_GRACE_MS: "2000", ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } });

function outcome(result: PromiseSettledResult<unknown>): string {
  if (result.status === "fulfilled") return "OK";
  const error = ConnectError.from(result.reason);
  return `${Code[error.code]}/${error.findDetails(ErrorInfoSchema)[0]?.reason ?? "?"}`;
}

it("REFRESH_REUSE_GRACE_MS defaults to 2000 and 0 turns the window off", () => {
  expect(loadConfig({ NODE_ENV: "test" }).refreshReuseGraceMs).toBe(2_000);
  expect(loadConfig({ NODE_ENV: "test", REFRESH_REUSE_GRACE_MS: "0" }).refreshReuseGraceMs).toBe(0);
});

describe.each(transportNames)("refresh grace window over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  async function expectSessionAlive(sessionId: string, userId: string, accessToken: string) {
    expect((await sessionRows(t.db, userId)).find((s) => s.id === sessionId)?.revoke_reason ?? null).toBeNull();
    expect((await t.verify(accessToken)).active).toBe(true);
    expect((await auditRows(t.db, userId)).map((e) => e.type)).not.toContain("REFRESH_TOKEN_REUSED");
  }

  it("two concurrent refreshes of one token: one succeeds, the other is REFRESH_TOKEN_CONCURRENT and the session lives", async () => {
    const account = await signUp(auth, `grace-two-${name}`);
    const results = await Promise.allSettled([0, 1].map(() => tokens.refreshToken({ refreshToken: account.tokens.refreshToken })));
    expect(results.map(outcome).sort()).toEqual(["Aborted/REFRESH_TOKEN_CONCURRENT", "OK"]);
    const loser = ConnectError.from((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason);
    expect(retryDelayMs(loser)).toBeGreaterThan(0);
    const winner = (results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<TokenClient["refreshToken"]>>>).value.tokens!;
    await expectSessionAlive(account.tokens.sessionId, account.userId, winner.accessToken);

    // The loser retrying with the same token gets the same answer, still revoking nothing...
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Aborted, reason: "REFRESH_TOKEN_CONCURRENT" });
    await expectSessionAlive(account.tokens.sessionId, account.userId, winner.accessToken);
    // ...and with the newest token (what it re-reads from its store or cookie), it goes on.
    const next = await tokens.refreshToken({ refreshToken: winner.refreshToken });
    expect(next.tokens?.sessionId).toBe(account.tokens.sessionId);
    await expectSessionAlive(account.tokens.sessionId, account.userId, next.tokens!.accessToken);
  });

  it("of 20 concurrent refreshes exactly one succeeds and none ends the session", async () => {
    const account = await signUp(auth, `grace-many-${name}`);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => tokens.refreshToken({ refreshToken: account.tokens.refreshToken })));
    const outcomes = results.map(outcome);
    expect(outcomes.filter((o) => o === "OK")).toHaveLength(1);
    expect(outcomes.filter((o) => o !== "OK")).toEqual(Array(19).fill("Aborted/REFRESH_TOKEN_CONCURRENT"));
    const winner = (results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<TokenClient["refreshToken"]>>>).value.tokens!;
    await expectSessionAlive(account.tokens.sessionId, account.userId, winner.accessToken);
    await tokens.refreshToken({ refreshToken: winner.refreshToken });
  });

  it("after the window, a second use is reuse: the family is revoked and audited as before", async () => {
    const account = await signUp(auth, `grace-after-${name}`);
    const rotated = (await tokens.refreshToken({ refreshToken: account.tokens.refreshToken })).tokens!;
    clock.advance(1_999);
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Aborted, reason: "REFRESH_TOKEN_CONCURRENT" });
    await expectSessionAlive(account.tokens.sessionId, account.userId, rotated.accessToken);
    clock.advance(1);
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_REUSED" });
    expect((await sessionRows(t.db, account.userId)).map((s) => s.revoke_reason)).toEqual(["refresh_token_reuse"]);
    expect((await auditRows(t.db, account.userId)).filter((e) => e.type === "REFRESH_TOKEN_REUSED")).toHaveLength(1);
    const verification = await t.verify(rotated.accessToken);
    expect(verification.active).toBe(false);
    expect(verification.reason).toBe(InactiveReason.SESSION_REVOKED);
    await expectError(tokens.refreshToken({ refreshToken: rotated.refreshToken }), { code: Code.Unauthenticated });
  });

  it("inside the window, a token of a session that has ended is not retryable", async () => {
    const account = await signUp(auth, `grace-ended-${name}`);
    const rotated = (await tokens.refreshToken({ refreshToken: account.tokens.refreshToken })).tokens!;
    await auth.logout({}, bearer(rotated.accessToken));
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_REUSED" });
    expect((await sessionRows(t.db, account.userId)).map((s) => s.revoke_reason)).toEqual(["logout"]);
  });
});

describe.each(["connect", "grpc-web"] as const)("two browser tabs refreshing one cookie at once, over %s", (protocol) => {
  const transport = () =>
    protocol === "connect"
      ? createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" })
      : createGrpcWebTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });
  /** A browser call (trusted Origin) with the refresh cookie, recording the Set-Cookie answered. */
  const tab = (cookie?: string) => {
    const seen: { setCookie: string | null } = { setCookie: null };
    const headers = { origin: "http://allowed.example", ...(cookie ? { cookie: `identity-refresh=${cookie}` } : {}) };
    const options: CallOptions = { headers, onHeader: (h) => (seen.setCookie = h.get("set-cookie")) };
    return { options, seen };
  };
  const cookieOf = (setCookie: string | null) => /^identity-refresh=([\w-]{43});/.exec(setCookie ?? "")?.[1];

  it("one tab rotates the cookie; the other is told to retry, keeps the cookie, and its retry with the new cookie works", async () => {
    const signUp = tab();
    await createClient(AuthService, transport()).signUp({ email: uniqueEmail(`tabs-${protocol}`), password: PASSWORD }, signUp.options);
    const cookie = cookieOf(signUp.seen.setCookie)!;
    expect(cookie).toBeDefined();

    const tokens = createClient(TokenService, transport());
    const [a, b] = [tab(cookie), tab(cookie)];
    const results = await Promise.allSettled([tokens.refreshToken({}, a.options), tokens.refreshToken({}, b.options)]);
    expect(results.map(outcome).sort()).toEqual(["Aborted/REFRESH_TOKEN_CONCURRENT", "OK"]);
    const [winner, loser] = results[0]!.status === "fulfilled" ? [a, b] : [b, a];
    const rotated = cookieOf(winner.seen.setCookie);
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(cookie);
    // The losing tab's answer does not touch the cookie the winning tab's answer stored.
    expect(loser.seen.setCookie).toBeNull();

    // The browser now sends the rotated cookie with the retry.
    const retry = tab(rotated);
    const retried = await tokens.refreshToken({}, retry.options);
    expect((await t.verify(retried.tokens!.accessToken)).active).toBe(true);
    expect(cookieOf(retry.seen.setCookie)).toBeDefined();
  });
});
