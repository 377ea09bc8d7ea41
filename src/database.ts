// Where the database comes from: DATABASE_URL, or embedded PostgreSQL under DATA_DIR.
import path from "node:path";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { startEmbeddedPostgres } from "./db/embedded.js";
import { loadDevSecrets } from "./dev-secrets.js";
import { DEFAULT_KEY_ID } from "./config.js";
import { createKeyring, type Keyring } from "./domain/crypto.js";

export interface DatabaseLocation {
  readonly url: string;
  /** KEY_ENCRYPTION_KEYS (or the development key in DATA_DIR, with the id `default`). */
  readonly kek: Keyring;
  stop(): Promise<void>;
}

export async function locateDatabase(config: Config, logger: Logger): Promise<DatabaseLocation> {
  const devSecrets = config.keyEncryptionKeys && config.databaseUrl ? undefined : loadDevSecrets(config.dataDir);
  const kek = createKeyring(config.keyEncryptionKeys ?? [{ id: DEFAULT_KEY_ID, key: Buffer.from(devSecrets!.keyEncryptionKey, "base64") }]);
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
