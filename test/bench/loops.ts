// Closed-loop load from Node where h2load cannot serve: each call needs a fresh input (refresh
// chains) or its answer must be checked (Login). Also the baselines these are compared with,
// run in this process: raw argon2 and a bare `pg` transaction.
import { createHash, randomBytes } from "node:crypto";
import argon2 from "argon2";
import pg from "pg";
import type { Config } from "../../src/config.js";
import { BENCH_PASSWORD, login, type ServiceClients, type Session } from "./clients.js";
import { percentiles, type Percentiles } from "./stats.js";

export interface LoopResult {
  readonly ok: number;
  readonly errors: number;
  readonly perSec: number;
  readonly latency: Percentiles;
  readonly firstError?: string;
}

export const loopProblems = (r: LoopResult) => (r.errors > 0 ? [`${r.errors} calls failed, first: ${r.firstError}`] : []);

/** `workers` concurrent loops of `op` for `durationMs`; a failed call counts as an error. */
export async function closedLoop(workers: number, durationMs: number, op: (worker: number) => Promise<void>): Promise<LoopResult> {
  const started = performance.now();
  const end = started + durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await op(worker);
          latencies.push(performance.now() - t0);
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { ok: latencies.length, errors, perSec: latencies.length / seconds, latency: percentiles(latencies), firstError };
}

/**
 * Login with the password, each worker to its own account (the service limits concurrent
 * attempts on one account from one address) on its own grpc-js channel; the answer must hold tokens.
 */
export function loginOp(clients: readonly ServiceClients[], emails: readonly string[]) {
  return async (worker: number) => {
    await login(clients[worker % clients.length]!, emails[worker % emails.length]!);
  };
}

/** Each worker refreshes its own session over and over with the token the last call gave it. */
export function refreshChainOp(clients: readonly ServiceClients[], sessions: readonly Session[]) {
  const chain = sessions.map((s) => s.refreshToken);
  return async (worker: number) => {
    const response = await clients[worker % clients.length]!.tokens.refreshToken({ refreshToken: chain[worker]! });
    chain[worker] = response.tokens!.refreshToken;
  };
}

export function argon2Options(config: Config) {
  const { memoryKiB, iterations, parallelism } = config.argon2;
  return { type: argon2.argon2id, memoryCost: memoryKiB, timeCost: iterations, parallelism } as const;
}

/** What Login pays per call: one argon2id verification (a full hash) with the same parameters. */
export async function rawArgon2Op(config: Config) {
  const hash = await argon2.hash(BENCH_PASSWORD, argon2Options(config));
  return async () => {
    if (!(await argon2.verify(hash, BENCH_PASSWORD))) throw new Error("argon2 verification failed");
  };
}

function sha256(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

/**
 * RefreshToken's reads and writes as one bare `pg` transaction: spend the token, read the
 * session with its user, touch the session, issue the next token. Each worker keeps its own
 * chain on one of `sessions` (rows the service created), with a pool as large as the service's.
 */
export async function bareRefreshOp(databaseUrl: string, sessions: readonly Session[], poolSize: number) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize });
  pool.on("error", () => {}); // an idle client losing its server (the run being stopped) is no failure
  const idleMs = 14 * 86400 * 1000;
  const issue = async (client: pg.PoolClient | pg.Pool, sessionId: string, now: Date) => {
    const token = randomBytes(32).toString("base64url");
    await client.query(`INSERT INTO refresh_tokens (session_id, token_hash, expires_at) VALUES ($1, $2, $3)`, [
      sessionId,
      sha256(token),
      new Date(now.getTime() + idleMs),
    ]);
    return token;
  };
  const chain = await Promise.all(sessions.map((s) => issue(pool, s.sessionId, new Date())));

  const op = async (worker: number) => {
    const client = await pool.connect();
    try {
      const now = new Date();
      await client.query("BEGIN");
      const spent = await client.query(
        `UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING session_id`,
        [sha256(chain[worker]!), now],
      );
      const sessionId = spent.rows[0]?.session_id as string | undefined;
      if (!sessionId) throw new Error("bare refresh: token not spendable");
      const session = await client.query(
        `SELECT s.user_id, s.amr, s.absolute_expires_at, u.role, u.username FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id = $1 AND s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND u.status = 'active'`,
        [sessionId, now],
      );
      if (session.rowCount !== 1) throw new Error("bare refresh: session ended");
      await client.query(`UPDATE sessions SET last_refresh_at = $2 WHERE id = $1`, [sessionId, now]);
      chain[worker] = await issue(client, sessionId, now);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  };
  return { op, close: () => pool.end() };
}
