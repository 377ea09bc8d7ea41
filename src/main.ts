// The only file that reads the environment and listens: config -> database -> migrations ->
// both servers -> graceful shutdown on SIGTERM/SIGINT.
//
// A start that fails exits non-zero with one line on stderr (no stack trace for a bad variable
// or a port in use), after undoing what it had started: above all the embedded PostgreSQL,
// which would otherwise keep running, and keep its port, after this process is gone.
import { format } from "node:util";
import { setFlagsFromString } from "node:v8";
import * as grpc from "@grpc/grpc-js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger, logDestination } from "./logger.js";
import { locateDatabase } from "./database.js";
import { openDatabase } from "./db/data-source.js";
import { createApp } from "./app.js";

/** What a failed start has to undo, last started first. */
const undo: { name: string; run: () => Promise<unknown> }[] = [];

/** listen() and grpc-js bind failures: the address or port, not a bug worth a stack trace. */
function isListenError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (typeof code === "string" && /^E(ADDRINUSE|ADDRNOTAVAIL|ACCES|AFNOSUPPORT|NOTFOUND|AI_AGAIN)$/.test(code)) || /could not bind/.test(String((err as Error).message));
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      // Every error at once, one line each, each naming its variable.
      for (const line of err.errors) console.error(`configuration error: ${line}`);
      process.exit(78);
    }
    throw err;
  }
  // Memory that stays flat under load (issue 14): without this V8 lets a busy heap's old
  // generation grow to several times its live size before a full collection (calls in flight
  // survive young collections and are promoted); the flag is read at each collection.
  if (config.heapGrowingPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowingPercent}`);
  const logger = createLogger(config.logLevel, await logDestination(config.logFormat), { traceIds: config.tracing !== undefined });
  // grpc-js's own messages (GRPC_VERBOSITY, errors by default) go to the JSON log, not stderr.
  grpc.setLogger({ error: (...args: unknown[]) => logger.warn({ grpc: format(...args) }, "grpc-js") });
  try {
    const location = await locateDatabase(config, logger);
    undo.unshift({ name: "database", run: () => location.stop() });
    const db = await openDatabase({ url: location.url, bounds: config.database });
    undo.unshift({ name: "connections", run: () => db.destroy() });
    const app = await createApp({ config, db, logger, kek: location.kek });
    undo.unshift({ name: "background work", run: () => app.stop() });
    const { servers } = app;
    undo.unshift({ name: "listeners", run: () => servers.close(0) });
    const ports = await servers.listen({
      host: config.bindHost,
      grpcPort: config.grpcPort,
      httpPort: config.httpPort,
      metricsHost: config.metricsHost,
      metricsPort: config.metricsPort,
    });
    undo.length = 0;
    const tls = config.tls && { clientCertificates: config.tls.clientCaFile === undefined ? "none" : config.tls.clientAuth };
    logger.info({ ...ports, host: config.bindHost, metricsHost: config.metricsHost, production: config.production, tls: tls ?? false }, "identity service listening");

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
  } catch (err) {
    // The full error goes to the log for anything unexpected; a listen error is its message.
    if (!isListenError(err)) logger.fatal({ err }, "start failed");
    for (const step of undo) {
      await step.run().catch((cause: unknown) => logger.warn({ err: cause, step: step.name }, "could not undo a start step"));
    }
    console.error(`identity service failed to start: ${oneLine(err)}`);
    process.exit(1);
  }
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}

main().catch((err: unknown) => {
  console.error(`identity service failed to start: ${oneLine(err)}`);
  process.exit(1);
});
