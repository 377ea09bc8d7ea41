import { DataSource } from "typeorm";
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
    await dataSource.runMigrations();
  } catch (err) {
    await dataSource.destroy();
    throw err;
  }
  return dataSource;
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
