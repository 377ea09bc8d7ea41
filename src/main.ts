// The only file that reads the environment and listens: config -> database -> migrations ->
// both servers -> graceful shutdown on SIGTERM/SIGINT.
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { locateDatabase } from "./database.js";
import { openDatabase } from "./db/data-source.js";
import { createApp } from "./app.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error: ${err.message}`);
      process.exit(78);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const location = await locateDatabase(config, logger);
  const db = await openDatabase({ url: location.url });
  const app = await createApp({ config, db, logger, kek: location.kek });
  const { servers } = app;
  const ports = await servers.listen(config.bindHost, config.grpcPort, config.httpPort);
  logger.info({ ...ports, host: config.bindHost, production: config.production }, "identity service listening");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    await servers.close(config.shutdownGraceMs);
    await app.stop();
    await db.destroy();
    await location.stop();
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err: unknown) => {
  console.error("identity service failed to start:", err);
  process.exit(1);
});
