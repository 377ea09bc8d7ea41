// A hung database (issue 19): PostgreSQL stops answering without closing its connections. Three
// runs on this file's own PostgreSQL (never the shared test database: other files run in
// parallel), each under Login and RefreshToken load over grpc-js and gRPC-web and VerifyToken
// load over grpc-js (an internal RPC, not served by the gateway):
//   - its processes frozen (SIGSTOP of the postmaster and every child, found via /proc), then
//     thawed (SIGCONT);
//   - a second instance whose DATABASE_URL points at a local port that accepts TCP connections
//     and stops answering (every connection of that instance: pool, probe, LISTEN), while the
//     first instance, still connected, revokes a session;
//   - a restart of PostgreSQL.
// Each run reports the longest call (under the bound plus 1 s), INTERNAL answers (0), VerifyToken
// successes while the database is away (100% until REVOCATION_MAX_STALENESS_MS), the time to
// recover, and acknowledged writes lost (0). The bounds are shortened through the environment;
// their defaults are config.ts's.
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { openDatabase } from "../../src/db/data-source.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { createStore, DatabaseUnavailableError } from "../../src/store/index.js";
import { run } from "../../src/store/tx.js";
import { freePort } from "../support/ports.js";
import { startTestService, TEST_SERVICE_KEY, type TestService } from "../support/service.js";
import { clientsFor, type Clients, type TransportName } from "../support/transports.js";

const QUERY_TIMEOUT_MS = 1_500;
const POOL_WAIT_MS = 1_500;
const MAX_STALENESS_MS = 5_000;
/** The longest a call may wait on PostgreSQL: pg's read timeout (statement_timeout + 250 ms) or the pool wait. */
const BOUND_MS = Math.max(QUERY_TIMEOUT_MS + 250, POOL_WAIT_MS);
const ENV = {
  DB_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
  DB_POOL_WAIT_MS: String(POOL_WAIT_MS),
  DB_LOCK_TIMEOUT_MS: "1000",
  REVOCATION_MAX_STALENESS_MS: String(MAX_STALENESS_MS),
  // Cheap hashing on this process's own thread pool: the longest call measures waiting on
  // PostgreSQL, not argon2 starved at a lowered priority on a busy machine.
  ARGON2_MEMORY_KIB: "1024",
  ARGON2_ITERATIONS: "1",
  HASH_ISOLATION: "inline",
};
const PASSWORD = "a long enough passphrase";
const TRANSPORTS: readonly TransportName[] = ["grpc", "grpc-web"];
const SERVICE_KEY = { "x-service-key": TEST_SERVICE_KEY };

const dir = path.resolve(".test-data", `stall-${process.pid}`);
let port = 0;
let postgres: EmbeddedDatabase | undefined;
const startPostgres = async () => (postgres = await startEmbeddedPostgres({ dir, port, password: "stall", persistent: true }));

beforeAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  port = await freePort();
  await startPostgres();
}, 60_000);

afterAll(async () => {
  signalPostgres("SIGCONT");
  await postgres?.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** The postmaster (postmaster.pid's first line) and every process whose parent it is (/proc). */
function postgresPids(): number[] {
  const postmaster = Number(readFileSync(path.join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
  const children = readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === postmaster;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [postmaster, ...children];
}

function signalPostgres(signal: "SIGSTOP" | "SIGCONT"): void {
  let pids: number[];
  try {
    pids = postgresPids();
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Gone meanwhile.
    }
  }
}

/**
 * A TCP port in front of PostgreSQL that forwards, or stops answering: `stall()` stops moving
 * bytes on every open connection and accepts new ones without ever answering them (no FIN, no
 * RST: what a partition looks like); `resume()` moves the held bytes again.
 */
async function stallingProxy(targetPort: number): Promise<{ port: number; stall(): void; resume(): void; close(): Promise<void> }> {
  let stalled = false;
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  const held = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (stalled) {
      held.add(client);
      client.on("error", () => {});
      client.on("close", () => held.delete(client));
      client.pause();
      return;
    }
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    stall() {
      stalled = true;
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      stalled = false;
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
      // Connections accepted while stalled were given up by their clients already.
      for (const socket of held) socket.destroy();
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface CallRecord {
  readonly kind: "login" | "refresh" | "verify";
  readonly transport: TransportName;
  readonly startedAt: number;
  readonly ms: number;
  /** "OK", or the code's name. */
  readonly code: string;
  readonly reason?: string;
  readonly active?: boolean;
}

interface Load {
  readonly calls: CallRecord[];
  /** Sessions of the logins that answered OK: acknowledged writes. */
  readonly sessions: string[];
  stop(): Promise<void>;
}

function failure(err: unknown): { code: string; reason?: string } {
  const error = ConnectError.from(err);
  return { code: Code[error.code], reason: error.findDetails(ErrorInfoSchema)[0]?.reason };
}

/** Login, RefreshToken and VerifyToken in a loop on each transport, every call recorded. */
async function startLoad(service: TestService, username: string, verifiedToken: string): Promise<Load> {
  const calls: CallRecord[] = [];
  const sessions: string[] = [];
  const connected: Clients[] = [];
  let running = true;
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function timed(kind: CallRecord["kind"], transport: TransportName, call: () => Promise<Partial<CallRecord> | undefined>): Promise<boolean> {
    const startedAt = Date.now();
    try {
      const extra = await call();
      calls.push({ kind, transport, startedAt, ms: Date.now() - startedAt, code: "OK", ...extra });
      return true;
    } catch (err) {
      calls.push({ kind, transport, startedAt, ms: Date.now() - startedAt, ...failure(err) });
      return false;
    }
  }

  const loops: Promise<void>[] = [];
  for (const name of TRANSPORTS) {
    const clients = clientsFor(service, name);
    connected.push(clients);
    const auth = clients.client(AuthService);
    const tokens = clients.client(TokenService);
    // A generous client deadline: a call the service does not bound shows up as a long call.
    const options = { timeoutMs: 15_000 };
    loops.push(
      (async () => {
        while (running) {
          const ok = await timed("login", name, async () => {
            const res = await auth.login({ identifier: username, password: PASSWORD }, options);
            if (res.result.case === "tokens") sessions.push(res.result.value.sessionId);
            return undefined;
          });
          await pause(ok ? 50 : 100);
        }
      })(),
      (async () => {
        let refreshToken = "";
        while (running) {
          if (refreshToken === "") {
            const res = await auth.login({ identifier: username, password: PASSWORD }, options).catch(() => undefined);
            if (res?.result.case === "tokens") refreshToken = res.result.value.refreshToken;
            else await pause(100);
            continue;
          }
          const spent = refreshToken;
          const ok = await timed("refresh", name, async () => {
            const res = await tokens.refreshToken({ refreshToken: spent }, options);
            refreshToken = res.tokens!.refreshToken;
            return undefined;
          });
          // A refresh that failed may have been rotated after all (an answer lost): start a new chain.
          if (!ok) refreshToken = "";
          await pause(ok ? 50 : 100);
        }
      })(),
      (async () => {
        // VerifyToken is an internal RPC: served on the gRPC port only (the gateway answers UNIMPLEMENTED).
        while (running && name === "grpc") {
          await timed("verify", name, async () => ({ active: (await tokens.verifyToken({ token: verifiedToken }, { ...options, headers: SERVICE_KEY })).active }));
          await pause(10);
        }
      })(),
    );
  }
  return {
    calls,
    sessions,
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const clients of connected) clients.close();
    },
  };
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await Promise.resolve(condition()).catch(() => false)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return undefined;
}

async function loginOk(service: TestService, username: string): Promise<boolean> {
  const clients = clientsFor(service, "grpc");
  try {
    const res = await clients.client(AuthService).login({ identifier: username, password: PASSWORD }, { timeoutMs: 5_000 });
    return res.result.case === "tokens";
  } finally {
    clients.close();
  }
}

/** Sessions of `ids` that are in the database (read directly, not through the service). */
async function storedSessions(ids: readonly string[]): Promise<number> {
  const client = new pg.Client({ connectionString: postgres!.url });
  await client.connect();
  try {
    return (await client.query(`SELECT id FROM sessions WHERE id = ANY($1::uuid[])`, [ids])).rowCount ?? 0;
  } finally {
    await client.end();
  }
}

async function signedIn(service: TestService, username: string): Promise<{ accessToken: string; sessionId: string }> {
  const clients = clientsFor(service, "grpc");
  try {
    const auth = clients.client(AuthService);
    await auth.signUp({ username, password: PASSWORD }).catch(() => undefined);
    const res = await auth.login({ identifier: username, password: PASSWORD });
    if (res.result.case !== "tokens") throw new Error("no tokens");
    return res.result.value;
  } finally {
    clients.close();
  }
}

interface Report {
  readonly run: string;
  readonly longestCallMs: number;
  readonly longestCall: string;
  readonly internal: number;
  readonly verifyWhileAway: string;
  readonly recoverMs: number | undefined;
  readonly acknowledgedWritesLost: number;
  readonly codes: Record<string, number>;
}

function report(run: string, load: Load, away: { from: number; to: number }, recoverMs: number | undefined, lost: number): Report {
  const codes: Record<string, number> = {};
  for (const call of load.calls) codes[`${call.kind}:${call.code}${call.reason ? `/${call.reason}` : ""}`] = (codes[`${call.kind}:${call.code}${call.reason ? `/${call.reason}` : ""}`] ?? 0) + 1;
  const fresh = load.calls.filter((c) => c.kind === "verify" && c.startedAt >= away.from && c.startedAt < Math.min(away.to, away.from + MAX_STALENESS_MS - 1_500));
  const longest = load.calls.reduce((a, b) => (b.ms > a.ms ? b : a));
  const result: Report = {
    run,
    longestCallMs: longest.ms,
    longestCall: `${longest.kind} over ${longest.transport}: ${longest.code}${longest.reason ? `/${longest.reason}` : ""}, ${longest.startedAt - away.from} ms after the database went away`,
    internal: load.calls.filter((c) => c.code === "Internal").length,
    verifyWhileAway: `${fresh.filter((c) => c.code === "OK" && c.active === true).length}/${fresh.length}`,
    recoverMs,
    acknowledgedWritesLost: lost,
    codes,
  };
  console.log(`database stall report: ${JSON.stringify(result)}`);
  return result;
}

describe("a hung database", () => {
  it("PostgreSQL frozen (SIGSTOP) under load: bounded calls, the breaker, VerifyToken from memory until the staleness bound, recovery at once", async () => {
    const service = await startTestService({ database: { url: postgres!.url, drop: async () => {} }, env: ENV });
    try {
      const username = `frozen-${process.pid}`;
      const verified = await signedIn(service, username);
      const load = await startLoad(service, username, verified.accessToken);
      await new Promise((r) => setTimeout(r, 1_000));

      const frozenAt = Date.now();
      signalPostgres("SIGSTOP");
      let thawedAt = 0;
      try {
        // Noticed within 2 s: the breaker is open and /readyz says so, with the revocation state's age.
        const noticedMs = await waitFor(async () => (await (await fetch(`${service.metricsUrl}`)).text()).includes("identity_db_breaker_open 1"), 4_000);
        expect(noticedMs, "breaker opened").toBeDefined();
        expect(Date.now() - frozenAt).toBeLessThan(2_500);
        const readyz = await fetch(`${service.httpUrl}/readyz`);
        expect(readyz.status).toBe(503);
        const body = (await readyz.json()) as { database: string; services: Record<string, string>; revocationAgeMs: number };
        expect(body.database).toBe("unreachable");
        expect(body.services["identity.v1.TokenService"]).toBe("SERVING");
        expect(body.services["identity.v1.AuthService"]).toBe("NOT_SERVING");
        expect(body.revocationAgeMs).toBeGreaterThan(0);
        // While open, a call that needs the database fails at once, with RetryInfo.
        const clients = clientsFor(service, "grpc");
        try {
          const started = Date.now();
          const refused = await clients.client(AuthService).login({ identifier: username, password: PASSWORD }).then(() => undefined, (err: unknown) => ConnectError.from(err));
          expect(Date.now() - started).toBeLessThan(500);
          expect(refused?.code).toBe(Code.Unavailable);
          expect(refused?.findDetails(ErrorInfoSchema)[0]?.reason).toBe("DATABASE_UNAVAILABLE");
          expect(refused?.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).toBe(1n);
        } finally {
          clients.close();
        }
        // Past the staleness bound VerifyToken fails closed.
        await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + MAX_STALENESS_MS + 1_000 - Date.now())));
        const metrics = await (await fetch(service.metricsUrl)).text();
        expect(Number(/identity_revocation_staleness_seconds ([\d.]+)/.exec(metrics)?.[1])).toBeGreaterThan(MAX_STALENESS_MS / 1000);
      } finally {
        signalPostgres("SIGCONT");
        thawedAt = Date.now();
      }
      const recoverMs = await waitFor(() => loginOk(service, username), 10_000, 20);
      await new Promise((r) => setTimeout(r, 1_000));
      await load.stop();

      const stale = load.calls.filter((c) => c.kind === "verify" && c.startedAt > frozenAt + MAX_STALENESS_MS + 200 && c.startedAt + c.ms < thawedAt);
      const result = report("SIGSTOP", load, { from: frozenAt, to: thawedAt }, recoverMs, load.sessions.length - (await storedSessions(load.sessions)));
      expect(result.longestCallMs).toBeLessThan(BOUND_MS + 1_000);
      expect(result.internal).toBe(0);
      const [ok, all] = result.verifyWhileAway.split("/").map(Number);
      expect(all).toBeGreaterThan(10);
      expect(ok).toBe(all);
      expect(stale.length).toBeGreaterThan(0);
      expect(stale.every((c) => c.code === "Unavailable" && c.reason === "REVOCATIONS_STALE")).toBe(true);
      expect(recoverMs).toBeDefined();
      expect(recoverMs!).toBeLessThan(2_000);
      expect(result.acknowledgedWritesLost).toBe(0);
      // Calls that needed the database were refused, not queued, and VerifyToken answers again.
      expect(result.codes["login:Unavailable/DATABASE_UNAVAILABLE"]).toBeGreaterThan(0);
      expect(load.calls.filter((c) => c.kind === "verify" && c.startedAt > thawedAt + recoverMs! + 500).every((c) => c.code === "OK")).toBe(true);
    } finally {
      signalPostgres("SIGCONT");
      await service.close();
    }
  }, 60_000);

  it("an instance whose database port accepts TCP and never answers keeps verifying, and catches up on a revocation made meanwhile on another instance before it counts as fresh", async () => {
    const proxy = await stallingProxy(port);
    const url = new URL(postgres!.url);
    url.port = String(proxy.port);
    const a = await startTestService({ database: { url: postgres!.url, drop: async () => {} }, env: ENV });
    const b = await startTestService({ database: { url: url.toString(), drop: async () => {} }, env: ENV });
    try {
      const username = `partitioned-${process.pid}`;
      const verified = await signedIn(a, username);
      const revoked = await signedIn(a, username);
      const verifyOnB = clientsFor(b, "grpc");
      const verify = (token: string) => verifyOnB.client(TokenService).verifyToken({ token }, { headers: SERVICE_KEY, timeoutMs: 5_000 });
      expect((await verify(revoked.accessToken)).active).toBe(true);
      const load = await startLoad(b, username, verified.accessToken);
      await new Promise((r) => setTimeout(r, 1_000));

      const stalledAt = Date.now();
      proxy.stall();
      let resumedAt = 0;
      try {
        const noticedMs = await waitFor(async () => (await fetch(`${b.httpUrl}/readyz`)).status === 503, 4_000);
        expect(noticedMs, "B noticed").toBeDefined();
        expect(Date.now() - stalledAt).toBeLessThan(2_500);
        // A, which still reaches PostgreSQL, ends the session; B cannot hear of it.
        const authA = clientsFor(a, "grpc");
        try {
          await authA.client(AuthService).logout({}, { headers: { authorization: `Bearer ${revoked.accessToken}` } });
        } finally {
          authA.close();
        }
        // Within the staleness bound B answers from memory (that is the bound's price)...
        expect((await verify(verified.accessToken)).active).toBe(true);
        await new Promise((r) => setTimeout(r, Math.max(0, stalledAt + MAX_STALENESS_MS + 1_000 - Date.now())));
        // ...and past it, fails closed.
        const stale = await verify(revoked.accessToken).then(() => undefined, (err: unknown) => failure(err));
        expect(stale).toEqual({ code: "Unavailable", reason: "REVOCATIONS_STALE" });
      } finally {
        proxy.resume();
        resumedAt = Date.now();
      }
      // From the first answer that is not "stale" on, B knows of A's logout: never active again.
      const answers: string[] = [];
      const freshMs = await waitFor(async () => {
        const answer = await verify(revoked.accessToken).then((r) => (r.active ? "active" : "inactive"), (err: unknown) => failure(err).reason ?? "error");
        answers.push(answer);
        return answer !== "REVOCATIONS_STALE";
      }, 10_000, 10);
      expect(freshMs).toBeDefined();
      expect(answers.at(-1)).toBe("inactive");
      expect(answers).not.toContain("active");
      const recoverMs = await waitFor(() => loginOk(b, username), 10_000, 20);
      await new Promise((r) => setTimeout(r, 1_000));
      await load.stop();
      verifyOnB.close();

      const result = report("port that never answers", load, { from: stalledAt, to: resumedAt }, recoverMs, load.sessions.length - (await storedSessions(load.sessions)));
      expect(result.longestCallMs).toBeLessThan(BOUND_MS + 1_000);
      expect(result.internal).toBe(0);
      const [ok, all] = result.verifyWhileAway.split("/").map(Number);
      expect(all).toBeGreaterThan(10);
      expect(ok).toBe(all);
      expect(recoverMs).toBeDefined();
      expect(recoverMs!).toBeLessThan(2_000);
      expect(result.acknowledgedWritesLost).toBe(0);
    } finally {
      proxy.resume();
      await b.close();
      await a.close();
      await proxy.close();
    }
  }, 60_000);

  it("a transaction cut off by a bound is rolled back and answers DATABASE_UNAVAILABLE: statement_timeout, lock_timeout, the read timeout of a frozen server", async () => {
    const db = await openDatabase({ url: postgres!.url, bounds: { queryTimeoutMs: 500, lockTimeoutMs: 300, idleInTransactionTimeoutMs: 5_000, poolWaitMs: 500 } });
    const store = createStore(db);
    const other = new pg.Client({ connectionString: postgres!.url });
    await other.connect();
    const stored = async () => (await other.query<{ tag: string }>("SELECT tag FROM stall_probe ORDER BY tag")).rows.map((r) => r.tag);
    try {
      await other.query("CREATE TABLE IF NOT EXISTS stall_probe (tag text)");
      const bounded = async (work: () => Promise<unknown>, limitMs: number) => {
        const started = Date.now();
        const err = await work().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(DatabaseUnavailableError);
        expect(Date.now() - started).toBeLessThan(limitMs);
      };
      // A live server cancels the statement (57014).
      await bounded(() => store.transaction(async (tx) => {
        await run(tx, "INSERT INTO stall_probe VALUES ('slow')");
        await run(tx, "SELECT pg_sleep(5)");
      }), 1_500);
      // A lock held elsewhere (55P03).
      await other.query("BEGIN");
      await other.query("LOCK TABLE stall_probe IN ACCESS EXCLUSIVE MODE");
      await bounded(() => store.transaction(async (tx) => run(tx, "INSERT INTO stall_probe VALUES ('locked')")), 1_500);
      await other.query("ROLLBACK");
      // A server frozen between two statements: pg's read timeout, the connection dropped, and the
      // ROLLBACK not waited for (one bound, not two).
      try {
        await bounded(() => store.transaction(async (tx) => {
          await run(tx, "INSERT INTO stall_probe VALUES ('frozen')");
          signalPostgres("SIGSTOP");
          await run(tx, "SELECT 1");
        }), 1_200);
      } finally {
        signalPostgres("SIGCONT");
      }
      expect(await stored()).toEqual([]);
      // The pool works again at once: the dropped connection was not handed out again.
      await store.transaction(async (tx) => run(tx, "INSERT INTO stall_probe VALUES ('after')"));
      expect(await stored()).toEqual(["after"]);
    } finally {
      signalPostgres("SIGCONT");
      await other.query("DROP TABLE IF EXISTS stall_probe").catch(() => undefined);
      await other.end();
      await store.health.close();
      await db.destroy();
    }
  }, 20_000);

  it("a start against a port that accepts TCP and never answers fails within the pool bound", async () => {
    const proxy = await stallingProxy(port);
    proxy.stall();
    const url = new URL(postgres!.url);
    url.port = String(proxy.port);
    try {
      const started = Date.now();
      await expect(startTestService({ database: { url: url.toString(), drop: async () => {} }, env: ENV })).rejects.toThrow(/timeout/i);
      expect(Date.now() - started).toBeLessThan(POOL_WAIT_MS + 1_000);
    } finally {
      await proxy.close();
    }
  }, 20_000);

  it("PostgreSQL restarted under load: bounded calls, no INTERNAL, no acknowledged write lost, recovery at once", async () => {
    const service = await startTestService({ database: { url: postgres!.url, drop: async () => {} }, env: ENV });
    try {
      const username = `restarted-${process.pid}`;
      const verified = await signedIn(service, username);
      const load = await startLoad(service, username, verified.accessToken);
      await new Promise((r) => setTimeout(r, 1_000));
      const stoppedAt = Date.now();
      await postgres!.stop();
      await new Promise((r) => setTimeout(r, 1_000));
      await startPostgres();
      const startedAt = Date.now();
      const recoverMs = await waitFor(() => loginOk(service, username), 10_000, 20);
      await new Promise((r) => setTimeout(r, 1_000));
      await load.stop();

      const result = report("restart", load, { from: stoppedAt, to: startedAt }, recoverMs, load.sessions.length - (await storedSessions(load.sessions)));
      expect(result.longestCallMs).toBeLessThan(BOUND_MS + 1_000);
      expect(result.internal).toBe(0);
      const [ok, all] = result.verifyWhileAway.split("/").map(Number);
      expect(ok).toBe(all);
      expect(recoverMs).toBeDefined();
      expect(recoverMs!).toBeLessThan(2_000);
      expect(result.acknowledgedWritesLost).toBe(0);
    } finally {
      await service.close();
    }
  }, 60_000);
});
