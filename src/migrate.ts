// `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database).
import { loadConfig } from "./config.js";
import { createLogger, logDestination } from "./logger.js";
import { locateDatabase } from "./database.js";
import { createDataSource, runMigrationsLocked } from "./db/data-source.js";

const config = loadConfig();
const logger = createLogger(config.logLevel, await logDestination(config.logFormat));
const location = await locateDatabase(config, logger);
const db = createDataSource({ url: location.url });
await db.initialize();
const applied = await runMigrationsLocked(db);
logger.info({ applied: applied.map((m) => m.name) }, "migrations applied");
await db.destroy();
await location.stop();
