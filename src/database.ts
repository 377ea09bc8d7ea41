// Where the database comes from: DATABASE_URL, or embedded PostgreSQL under DATA_DIR.
import path from "node:path";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { startEmbeddedPostgres } from "./db/embedded.js";
import { loadDevSecrets } from "./dev-secrets.js";

export interface DatabaseLocation {
  readonly url: string;
  readonly kek: Buffer;
  stop(): Promise<void>;
}

export async function locateDatabase(config: Config, logger: Logger): Promise<DatabaseLocation> {
  const devSecrets = config.keyEncryptionKey && config.databaseUrl ? undefined : loadDevSecrets(config.dataDir);
  const kek = Buffer.from(config.keyEncryptionKey ?? devSecrets!.keyEncryptionKey, "base64");
  if (config.databaseUrl) return { url: config.databaseUrl, kek, stop: async () => {} };
  const dir = path.join(config.dataDir, "postgres");
  logger.info({ dir, port: config.embeddedPgPort }, "starting embedded PostgreSQL (DATABASE_URL is unset)");
  const embedded = await startEmbeddedPostgres({
    dir,
    port: config.embeddedPgPort,
    password: devSecrets!.postgresPassword,
    persistent: true,
    logger,
  });
  return { url: embedded.url, kek, stop: embedded.stop };
}
