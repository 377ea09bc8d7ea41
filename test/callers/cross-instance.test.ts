// Revoking a key or disabling an account on one instance refuses that caller on another (a
// separate OS process on the same PostgreSQL) within a second, with no restart: by NOTIFY, and by
// the fallback reload while the LISTEN connections are down.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { LISTENER_APPLICATION_NAME } from "../../src/store/revocation-feed.js";
import { createTestDatabase } from "../support/database.js";
import { spawnServiceProcess } from "../support/process.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { clientsOn, prepared, setupService } from "../support/setup.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";

// Instance A in this process (its domain makes the changes), instance B a separate process.
const database = prepared(createTestDatabase, (db) => db.drop());
const a = setupService(() => ({ database: database() }));
// At LOG_LEVEL=debug: B's log must show a successful VerifyToken's line, which is at debug.
const b = prepared(() => spawnServiceProcess(database().url, { LOG_LEVEL: "debug" }), async (proc) => void (await proc.stop()));
const { tokens: tokensB } = clientsOn(b, "grpc");
const { auth: authA } = a.clients("grpc");
const token = a.prepare(async () => (await authA.signUp({ email: "cross-accounts@example.com", password: "a long enough passphrase" })).tokens!.accessToken);

/** What B answers VerifyToken with this key: "ok" or the error's code. */
async function onB(key: string): Promise<"ok" | Code> {
  try {
    await tokensB.verifyToken({ token: token() }, { headers: { "x-service-key": key } });
    return "ok";
  } catch (err) {
    if (err instanceof ConnectError) return err.code;
    throw err;
  }
}

/** Polls B until it answers `expected`; how long that took (fails after 3 s). */
async function untilB(key: string, expected: "ok" | Code): Promise<number> {
  const started = performance.now();
  for (;;) {
    const answer = await onB(key);
    const ms = performance.now() - started;
    if (answer === expected) return ms;
    if (ms > 3_000) throw new Error(`instance B still answers ${answer} after 3 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("service accounts across instances", () => {
  it("a key made on A works on B; revoked on A, B refuses it within 1 s", async () => {
    const account = await accountWithKey(a, uniqueAccountName("cross-revoke"), ["tokens.verify"]);
    expect(await untilB(account.key, "ok")).toBeLessThan(1_000);
    await a.app.serviceAccounts.revokeKey(account.prefix);
    expect(await untilB(account.key, Code.Unauthenticated)).toBeLessThan(1_000);
  });

  it("an account disabled on A is refused by B within 1 s, and accepted again once enabled", async () => {
    const account = await accountWithKey(a, uniqueAccountName("cross-disable"), ["tokens.verify"]);
    await untilB(account.key, "ok");
    await a.app.serviceAccounts.disable(account.name);
    expect(await untilB(account.key, Code.Unauthenticated)).toBeLessThan(1_000);
    await a.app.serviceAccounts.enable(account.name);
    expect(await untilB(account.key, "ok")).toBeLessThan(1_000);
  });

  it("B still refuses a revoked key within 1 s while the LISTEN connections are dropped", async () => {
    const account = await accountWithKey(a, uniqueAccountName("cross-lost"), ["tokens.verify"]);
    await untilB(account.key, "ok");
    const killed = (await a.db.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
      [LISTENER_APPLICATION_NAME],
    )) as Array<{ ok: boolean }>;
    expect(killed.filter((k) => k.ok).length).toBe(2);
    await a.app.serviceAccounts.revokeKey(account.prefix);
    expect(await untilB(account.key, Code.Unauthenticated)).toBeLessThan(1_000);
  });

  it("B's log names the caller", async () => {
    const account = await accountWithKey(a, uniqueAccountName("cross-log"), ["tokens.verify"]);
    await untilB(account.key, "ok");
    // B's log reaches this process through a pipe: read until the line has arrived.
    const named = () => b().logLines.some((l) => l.includes('"rpc":"identity.v1.TokenService/VerifyToken"') && l.includes(`"caller":"${account.name}"`));
    const deadline = performance.now() + 2_000;
    while (!named() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(named()).toBe(true);
  });
});

describe("service tokens across instances", () => {
  it("a token issued on A verifies on B until its account is disabled on A: B refuses it within 1 s", async () => {
    const account = await accountWithKey(a, uniqueAccountName("cross-token"), ["tokens.issue"], { audiences: ["payments"] });
    const { accessToken } = await a.clients("grpc").tokens.issueServiceToken({ audience: "payments" }, { headers: { "x-service-key": account.key } });
    const reasonOnB = async () => (await tokensB.verifyToken({ token: accessToken, audience: "payments" }, { headers: { "x-service-key": TEST_SERVICE_KEY } })).reason;
    expect(await reasonOnB()).toBe(InactiveReason.UNSPECIFIED);
    await a.app.serviceAccounts.disable(account.name);
    const started = performance.now();
    while ((await reasonOnB()) !== InactiveReason.USER_DISABLED) {
      if (performance.now() - started > 3_000) throw new Error("B still answers the token active after 3 s");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
