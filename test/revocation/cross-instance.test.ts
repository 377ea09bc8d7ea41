// Revocation on one instance reaches VerifyToken on another (a separate OS process on the same
// PostgreSQL) within a second: by NOTIFY normally, by polling while the listener is down.
import { describe, expect, inject, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { LISTENER_APPLICATION_NAME } from "../../src/store/revocation-feed.js";
import { createTestDatabase } from "../support/database.js";
import { spawnServiceProcess } from "../support/process.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { clientsOn, prepared, setupService } from "../support/setup.js";

const PASSWORD = "a long enough passphrase";
// Instance A in this process, instance B a separate process, on one database.
const database = prepared(createTestDatabase, (db) => db.drop());
const a = setupService(() => ({ database: database() }));
const b = prepared(() => spawnServiceProcess(database().url), async (proc) => void (await proc.stop()));
const { auth: authA, tokens: tokensA } = a.clients("grpc");
const { tokens: tokensB } = clientsOn(b, "grpc");

let counter = 0;
async function signIn() {
  const email = `cross-${++counter}@example.com`;
  const res = await authA.signUp({ email, password: PASSWORD });
  const tokens = res.tokens!;
  return { email, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, sessionId: tokens.sessionId, bearer: { authorization: `Bearer ${tokens.accessToken}` } };
}

async function verifyOnB(token: string) {
  return tokensB.verifyToken({ token }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
}

/** Polls VerifyToken on B until the token is inactive; returns the reason and how long it took. */
async function inactiveOnB(token: string): Promise<{ reason: InactiveReason; ms: number }> {
  const started = performance.now();
  for (;;) {
    const res = await verifyOnB(token);
    const ms = performance.now() - started;
    if (!res.active) return { reason: res.reason, ms };
    if (ms > 3_000) throw new Error("token still active on the other instance after 3 s");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("revocation across instances", () => {
  it("the other instance verifies a fresh token", async () => {
    const s = await signIn();
    expect((await verifyOnB(s.accessToken)).active).toBe(true);
  });

  const cases: Array<[string, (s: Awaited<ReturnType<typeof signIn>>) => Promise<unknown>, InactiveReason]> = [
    ["Logout", (s) => authA.logout({}, { headers: s.bearer }), InactiveReason.SESSION_REVOKED],
    ["RevokeSession", async (s) => {
      const other = await authA.login({ identifier: s.email, password: PASSWORD });
      const otherBearer = { authorization: `Bearer ${other.result.case === "tokens" ? other.result.value.accessToken : ""}` };
      return authA.revokeSession({ sessionId: s.sessionId }, { headers: otherBearer });
    }, InactiveReason.SESSION_REVOKED],
    ["RevokeToken (access)", (s) => tokensA.revokeToken({ token: s.accessToken }), InactiveReason.SESSION_REVOKED],
    ["RevokeToken (refresh)", (s) => tokensA.revokeToken({ token: s.refreshToken }), InactiveReason.SESSION_REVOKED],
    ["ChangePassword (other session)", async (s) => {
      const other = await authA.login({ identifier: s.email, password: PASSWORD });
      const otherBearer = { authorization: `Bearer ${other.result.case === "tokens" ? other.result.value.accessToken : ""}` };
      return authA.changePassword({ currentPassword: PASSWORD, newPassword: "another long passphrase" }, { headers: otherBearer });
    }, InactiveReason.SESSION_REVOKED],
    ["DeleteAccount", (s) => authA.deleteAccount({ password: PASSWORD }, { headers: s.bearer }), InactiveReason.USER_DISABLED],
    ["refresh-token reuse", async (s) => {
      await tokensA.refreshToken({ refreshToken: s.refreshToken });
      await tokensA.refreshToken({ refreshToken: s.refreshToken }).catch(() => undefined);
    }, InactiveReason.SESSION_REVOKED],
  ];

  it.each(cases)("%s on A is seen by VerifyToken on B within 1 s", async (_name, act, reason) => {
    const s = await signIn();
    expect((await verifyOnB(s.accessToken)).active).toBe(true);
    await act(s);
    const seen = await inactiveOnB(s.accessToken);
    expect(seen.reason).toBe(reason);
    expect(seen.ms).toBeLessThan(1_000);
  });

  it("keeps revoking within 1 s while the listener connections are dropped, then reconnects", async () => {
    const s = await signIn();
    expect((await verifyOnB(s.accessToken)).active).toBe(true);
    const killed = (await a.db.query(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
      [LISTENER_APPLICATION_NAME],
    )) as Array<{ ok: boolean }>;
    expect(killed.filter((k) => k.ok).length).toBe(2); // A's and B's listeners
    await authA.logout({}, { headers: s.bearer });
    const seen = await inactiveOnB(s.accessToken);
    expect(seen.reason).toBe(InactiveReason.SESSION_REVOKED);
    expect(seen.ms).toBeLessThan(1_000);

    // Both listeners come back by themselves.
    const deadline = Date.now() + 10_000;
    let listeners = 0;
    while (Date.now() < deadline) {
      const rows = (await a.db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
        [LISTENER_APPLICATION_NAME],
      )) as Array<{ n: number }>;
      listeners = rows[0]!.n;
      if (listeners === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listeners).toBe(2);
  });
});

describe("VerifyToken without the database", () => {
  it("answers from memory while PostgreSQL refuses every connection", async () => {
    const s = await signIn();
    const revoked = await signIn();
    await authA.logout({}, { headers: revoked.bearer });
    expect((await inactiveOnB(revoked.accessToken)).reason).toBe(InactiveReason.SESSION_REVOKED);
    expect((await verifyOnB(s.accessToken)).active).toBe(true);

    const admin = await import("pg").then(({ default: pg }) => new pg.Client({ connectionString: inject("adminDatabaseUrl") }));
    await admin.connect();
    const name = new URL(database().url).pathname.slice(1);
    try {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);
      for (let i = 0; i < 50; i++) {
        expect((await verifyOnB(s.accessToken)).active).toBe(true);
        expect((await verifyOnB(revoked.accessToken)).active).toBe(false);
      }
    } finally {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
  });
});
