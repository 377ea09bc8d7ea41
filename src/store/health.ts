// What readiness asks of the database: does it answer, and is a migration pending.
import { poolStats, type PoolStats } from "../db/data-source.js";
import type { Database } from "./tx.js";

export type { PoolStats };

export interface DatabaseHealth {
  /** Resolves when PostgreSQL answers a trivial query. */
  ping(): Promise<void>;
  /** Whether a migration the code knows has not been applied. */
  pendingMigrations(): Promise<boolean>;
  /** The connection pool's occupancy, for metrics. */
  pool(): PoolStats;
}

export function createDatabaseHealth(db: Database): DatabaseHealth {
  return {
    async ping() {
      await db.query("SELECT 1");
    },
    pendingMigrations: () => db.showMigrations(),
    pool: () => poolStats(db),
  };
}
