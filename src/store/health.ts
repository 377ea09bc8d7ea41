// What readiness asks of the database: does it answer, and is a migration pending; and the
// breaker that answer drives (issue 19). The probe runs on a connection of its own, so it
// neither waits behind a pool full of calls stuck on a database that does not answer nor passes
// the breaker it closes. A failed probe opens the breaker: while it is open, the pool refuses
// every checkout at once (src/db/data-source.ts gateCheckouts), so calls that need the database
// answer DATABASE_UNAVAILABLE immediately instead of queueing; the next probe that succeeds closes it.
import pg from "pg";
import { databaseUrl, gateCheckouts, KEEPALIVE, lastAnswerAt, poolStats, type PoolStats } from "../db/data-source.js";
import { DatabaseUnavailableError } from "./errors.js";
import type { Database } from "./tx.js";

export type { PoolStats };

/** How the probe connection names itself in pg_stat_activity. */
export const PROBE_APPLICATION_NAME = "identity-readiness-probe";

export interface DatabaseHealth {
  /** Resolves when PostgreSQL answers a trivial query within `timeoutMs`; opens or closes the breaker. */
  ping(timeoutMs?: number): Promise<void>;
  /** Whether a migration the code knows has not been applied. */
  pendingMigrations(): Promise<boolean>;
  /** The connection pool's occupancy, for metrics. */
  pool(): PoolStats;
  /** Whether the breaker is open (the last probe failed): calls that need the database are refused. */
  readonly breakerOpen: boolean;
  /** Closes the probe connection. */
  close(): Promise<void>;
}

export function createDatabaseHealth(db: Database): DatabaseHealth {
  let open = false;
  let probe: pg.Client | undefined;
  // One error object for every refusal: the refused path allocates nothing per call.
  const refused = new DatabaseUnavailableError("database unavailable: the breaker is open (the last readiness probe failed)");
  gateCheckouts(db, () => (open ? refused : undefined));

  function drop(client: pg.Client): void {
    if (probe === client) probe = undefined;
    client.removeAllListeners();
    client.on("error", () => {});
    // Not end(): a server that does not answer would never complete the goodbye.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }

  async function connected(timeoutMs: number): Promise<pg.Client> {
    if (probe) return probe;
    const client = new pg.Client({ connectionString: databaseUrl(db), application_name: PROBE_APPLICATION_NAME, connectionTimeoutMillis: timeoutMs, ...KEEPALIVE });
    client.on("error", () => drop(client));
    try {
      await client.connect();
    } catch (err) {
      drop(client);
      throw err;
    }
    probe = client;
    return client;
  }

  return {
    async ping(timeoutMs = 1_000) {
      const started = Date.now();
      let client: pg.Client | undefined;
      try {
        client = await connected(timeoutMs);
        await client.query({ text: "SELECT 1", query_timeout: timeoutMs } as pg.QueryConfig);
        open = false;
      } catch (err) {
        // A busy process reads its sockets late: let it read what arrived before deciding.
        await new Promise((resolve) => setImmediate(resolve));
        if (client) drop(client);
        // The pool's calls were answered in the second half of the probe's wait: slow (a busy
        // machine), not stalled. A server that stopped answering at the probe's start has answered
        // nothing since.
        if (lastAnswerAt(db) >= Math.max(started, Date.now() - timeoutMs / 2)) {
          open = false;
          return;
        }
        open = true;
        throw err;
      }
    },
    pendingMigrations: () => db.showMigrations(),
    pool: () => poolStats(db),
    get breakerOpen() {
      return open;
    },
    async close() {
      if (probe) drop(probe);
    },
  };
}
