// The real service on port 0 against a real PostgreSQL database, built from the same
// factories main.ts uses. Tests read and write the database directly to check effects. Suites
// use setupService (setup.ts); startTestService is for a service a single test starts and ends.
import { Writable } from "node:stream";
import type { DataSource } from "typeorm";
import { createApp, type App } from "../../src/app.js";
import { DEFAULT_KEY_ID, loadConfig, type Config } from "../../src/config.js";
import { createKeyring, type Keyring } from "../../src/domain/crypto.js";
import { openDatabase } from "../../src/db/data-source.js";
import { ManualClock, systemClock, type Clock } from "../../src/domain/clock.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { createTestOutbox, type TestOutbox } from "./outbox.js";

/** Fixed so that several instances on one database can unseal the same signing keys. */
export const TEST_KEK = Buffer.alloc(32, 7);
/** TEST_KEK as KEY_ENCRYPTION_KEY gives it: a keyring of one key, id `default`. */
export const TEST_KEYRING = createKeyring([{ id: DEFAULT_KEY_ID, key: TEST_KEK }]);
export const TEST_SERVICE_KEY = "test-service-key-0123456789abcdef0123456789";
/** The bootstrap caller every test service has: SERVICE_KEYS=test:<TEST_SERVICE_KEY>. */
export const TEST_SERVICE_NAME = "test";
export const TEST_SERVICE_KEYS = `${TEST_SERVICE_NAME}:${TEST_SERVICE_KEY}`;

export interface TestService {
  readonly app: App;
  readonly db: DataSource;
  readonly config: Config;
  readonly clock: Clock;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  /** The Prometheus listener's GET /metrics (not on the gateway). */
  readonly metricsUrl: string;
  /** Every line the service logged, for tests that grep the log. */
  readonly logLines: string[];
  /** Every message the console provider sent (codes are read here, not from the log). */
  readonly outbox: TestOutbox;
  close(): Promise<void>;
}

export interface TestServiceOptions {
  readonly env?: Record<string, string>;
  readonly clock?: Clock;
  /** Reuse a database (a second instance on the same data). */
  readonly database?: TestDatabase;
  /** The outbox the console provider writes to (a new one when omitted). */
  readonly outbox?: TestOutbox;
  /** The key-encryption keyring (TEST_KEYRING when omitted). */
  readonly keyring?: Keyring;
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const database = options.database ?? (await createTestDatabase());
  const config = loadConfig({
    NODE_ENV: "test",
    // What production requires (the database is opened below, from the same URL).
    DATABASE_URL: database.url,
    TOKEN_ISSUER: "http://localhost:8080",
    SERVICE_KEYS: TEST_SERVICE_KEYS,
    CORS_ORIGINS: "http://allowed.example",
    LOG_LEVEL: "info",
    // Suites sign up dozens of accounts from 127.0.0.1; test/security/sign-up-limits.test.ts sets its own.
    SIGNUP_MAX_PER_IP_PER_HOUR: "1000000",
    // Suites written before the refresh grace window expect a second use to revoke at once;
    // test/contract/refresh-grace.test.ts runs with the default window.
    REFRESH_REUSE_GRACE_MS: "0",
    // Suites share a busy machine (floods of sign-ups in test/security/ wait seconds on locks);
    // test/ops/database-stall.test.ts sets the bounds it tests, and config.test.ts the defaults.
    DB_QUERY_TIMEOUT_MS: "10000",
    DB_LOCK_TIMEOUT_MS: "10000",
    ...options.env,
  });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString().split("\n").filter((l) => l !== ""));
      done();
    },
  });
  const logger = createLogger(config.logLevel, sink, { traceIds: config.tracing !== undefined });
  const db = await openDatabase({ url: database.url, poolSize: 20, bounds: config.database });
  const clock = options.clock ?? systemClock;
  const outbox = options.outbox ?? createTestOutbox();
  const app = await createApp({ config, db, logger, kek: options.keyring ?? TEST_KEYRING, clock, outbox }).catch(async (err: unknown) => {
    await db.destroy();
    throw err;
  });
  // Port 0 unless a test needs to know the gateway's port before it starts (PUBLIC_URL).
  const httpPort = options.env?.HTTP_PORT ? config.httpPort : 0;
  const ports = await app.servers.listen({ host: "127.0.0.1", grpcPort: 0, httpPort, metricsHost: "127.0.0.1", metricsPort: 0 });
  return {
    app,
    db,
    config,
    clock,
    grpcAddress: `127.0.0.1:${ports.grpcPort}`,
    httpUrl: `${config.tls ? "https" : "http"}://127.0.0.1:${ports.httpPort}`,
    metricsUrl: `http://127.0.0.1:${ports.metricsPort}/metrics`,
    logLines,
    outbox,
    async close() {
      await app.servers.close(1_000);
      await app.stop();
      await db.destroy();
      if (!options.database) await database.drop();
    },
  };
}

export { ManualClock };
