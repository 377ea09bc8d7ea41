import { DataSource, MigrationExecutor, type Migration } from "typeorm";
import { entities } from "./entities/index.js";
import { migrations } from "./migrations/index.js";

export interface DataSourceOptions {
  readonly url: string;
  readonly poolSize?: number;
}

/** Builds (does not connect) the DataSource. Schema changes come only from migrations. */
export function createDataSource({ url, poolSize = 10 }: DataSourceOptions): DataSource {
  return new DataSource({
    type: "postgres",
    url,
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTransactionMode: "each",
    logging: false,
    extra: { max: poolSize, connectionTimeoutMillis: 5_000, application_name: "grpc-identity" },
  });
}

/** Connects and applies pending migrations; returns the DataSource ready for use. */
export async function openDatabase(options: DataSourceOptions): Promise<DataSource> {
  const dataSource = createDataSource(options);
  await dataSource.initialize();
  try {
    await runMigrationsLocked(dataSource);
  } catch (err) {
    await dataSource.destroy();
    throw err;
  }
  return dataSource;
}

/**
 * Applies pending migrations under a PostgreSQL advisory lock, on one connection: the lock, the
 * check of what is pending and the migrations themselves. Replicas started together on an empty
 * database queue on the lock; the first migrates, the others then find nothing pending. TypeORM's
 * own runner takes no lock, and its "CREATE TABLE migrations" and inserts would race.
 */
export async function runMigrationsLocked(dataSource: DataSource): Promise<Migration[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    // No statement timeout on this session: waiting for another replica's migrations, or a long
    // migration, is not a stalled query.
    await runner.query(`SELECT set_config('statement_timeout', '0', false)`);
    await runner.query(`SELECT pg_advisory_lock(hashtext('grpc-identity migrations'))`);
    try {
      const executor = new MigrationExecutor(dataSource, runner);
      executor.transaction = dataSource.options.migrationsTransactionMode ?? "all";
      return await executor.executePendingMigrations();
    } finally {
      await runner.query(`SELECT pg_advisory_unlock(hashtext('grpc-identity migrations'))`);
      // The connection goes back to the pool with its usual timeout.
      await runner.query(`RESET statement_timeout`);
    }
  } finally {
    await runner.release();
  }
}

/** The connection string the DataSource was opened with (for a connection of its own, e.g. LISTEN). */
export function databaseUrl(db: DataSource): string {
  const url = db.options.type === "postgres" ? db.options.url : undefined;
  if (url === undefined) throw new Error("the DataSource was not opened from a PostgreSQL URL");
  return url;
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

/** The pg pool behind TypeORM's PostgreSQL driver (`driver.master`, which TypeORM types as any). */
export function poolStats(db: DataSource): PoolStats {
  const pool = (db.driver as { master?: { totalCount: number; idleCount: number; waitingCount: number } }).master;
  return { total: pool?.totalCount ?? 0, idle: pool?.idleCount ?? 0, waiting: pool?.waitingCount ?? 0 };
}
