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
