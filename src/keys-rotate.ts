// `npm run keys:rotate`: publishes a new signing key now; it signs after KEY_PUBLISH_AHEAD_SECONDS
// and the previous key stays in the JWKS until its last token has expired.
import { loadConfig } from "./config.js";
import { createLogger, logDestination } from "./logger.js";
import { locateDatabase } from "./database.js";
import { openDatabase } from "./db/data-source.js";
import { systemClock } from "./domain/clock.js";
import { createSigningKeys } from "./domain/tokens/signing-keys.js";
import { createStore } from "./store/index.js";

const config = loadConfig();
const logger = createLogger(config.logLevel, await logDestination(config.logFormat));
const location = await locateDatabase(config, logger);
const db = await openDatabase({ url: location.url });
const keys = createSigningKeys(createStore(db), location.kek, systemClock, { accessTokenTtlSec: config.accessTokenTtlSec, ...config.keys });
await keys.init();
const rotated = await keys.rotate();
logger.info({ kid: rotated.kid, activatesAt: rotated.activatesAt.toISOString() }, "signing key rotated");
await db.destroy();
await location.stop();
