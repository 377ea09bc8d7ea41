import { DataSource, MigrationExecutor, type Migration } from "typeorm";
import { entities } from "./entities/index.js";
import { migrations } from "./migrations/index.js";
import { BoundedClient, type Answers } from "./bounded-client.js";

export interface DataSourceOptions {
  readonly url: string;
  readonly poolSize?: number;
  /** Time bounds on every statement and on the wait for a connection (config.ts DatabaseBoundsConfig); none when left out. */
  readonly bounds?: DatabaseBounds;
}

/** What the pool is bounded by (issue 19); the same fields as config.database. */
export interface DatabaseBounds {
  readonly queryTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionTimeoutMs: number;
  readonly poolWaitMs: number;
}

/** TCP keepalives on every connection (pool and LISTEN): a peer gone without a FIN is noticed. */
export const KEEPALIVE = { keepAlive: true, keepAliveInitialDelayMillis: 10_000 } as const;

/**
 * The pg pool options for `bounds`. statement_timeout, lock_timeout and
 * idle_in_transaction_session_timeout are PostgreSQL's (sent at connection start); query_timeout
 * is pg's own read timeout, a little longer than statement_timeout so that a live server cancels
 * first (the connection survives) and only a server that does not answer at all is cut off on
 * this side (BoundedClient then drops the connection). connectionTimeoutMillis bounds both
 * opening a connection and waiting for a pooled one (pg-pool's connect() times out its pending
 * queue entry too).
 */
export function poolBounds(bounds: DatabaseBounds): Record<string, unknown> {
  return {
    statement_timeout: bounds.queryTimeoutMs,
    query_timeout: bounds.queryTimeoutMs + 250,
    lock_timeout: bounds.lockTimeoutMs,
    idle_in_transaction_session_timeout: bounds.idleInTransactionTimeoutMs,
    connectionTimeoutMillis: bounds.poolWaitMs,
    Client: BoundedClient,
    answers: { at: 0 } satisfies Answers,
  };
}

/** Builds (does not connect) the DataSource. Schema changes come only from migrations. */
export function createDataSource({ url, poolSize = 10, bounds }: DataSourceOptions): DataSource {
  return new DataSource({
    type: "postgres",
    url,
    entities,
    migrations,
    synchronize: false,
    migrationsRun: false,
    migrationsTransactionMode: "each",
    logging: false,
    extra: { max: poolSize, connectionTimeoutMillis: 5_000, application_name: "grpc-identity", ...KEEPALIVE, ...(bounds && poolBounds(bounds)) },
  });
}

/** Connects and applies pending migrations; returns the DataSource ready for use. */
export async function openDatabase(options: DataSourceOptions): Promise<DataSource> {
  const dataSource = createDataSource(options);
  await dataSource.initialize();
  try {
    // Migrations are not bounded by the query timeout (an index on a large table takes what it
    // takes, and so does waiting on the lock for another replica's): with bounds, they run on a
    // connection of their own without bounds, under the same lock.
    if (options.bounds) await migrateUnbounded(options.url);
    else await runMigrationsLocked(dataSource);
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

async function migrateUnbounded(url: string): Promise<void> {
  const unbounded = createDataSource({ url, poolSize: 1 });
  await unbounded.initialize();
  try {
    await runMigrationsLocked(unbounded);
  } finally {
    await unbounded.destroy();
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

/** When PostgreSQL last answered a query of the pool (Date.now()); 0 when unknown (a pool without bounds). */
export function lastAnswerAt(db: DataSource): number {
  return (db.driver as { master?: { options?: { answers?: Answers } } }).master?.options?.answers?.at ?? 0;
}

type Checkout = (callback: (err: Error | undefined, client?: unknown, release?: unknown) => void) => unknown;
const gates = new WeakMap<object, () => Error | undefined>();

/**
 * Makes the pool refuse checkouts while `refusal()` answers an error (the store's breaker,
 * src/store/health.ts): every statement, transaction and entity operation of the service takes
 * a connection through this one point (TypeORM's obtainMasterConnection), so a refused checkout
 * fails the call at once instead of queueing it behind a database that does not answer. The
 * last call for a DataSource wins; it does nothing before the DataSource is initialized.
 */
export function gateCheckouts(db: DataSource, refusal: () => Error | undefined): void {
  const pool = (db.driver as { master?: { connect: Checkout } }).master;
  if (!pool) return;
  const installed = gates.has(pool);
  gates.set(pool, refusal);
  if (installed) return;
  const connect = pool.connect.bind(pool) as Checkout;
  pool.connect = ((callback) => {
    const refused = typeof callback === "function" ? gates.get(pool)?.() : undefined;
    if (refused === undefined) return connect(callback);
    process.nextTick(() => callback(refused));
    return undefined;
  }) as Checkout;
}
