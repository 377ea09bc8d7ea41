// What the operator commands (`npm run service-accounts`, `npm run admin`) share: the order of a
// run (arguments, configuration, the database: embedded or DATABASE_URL), the log on stderr, and
// how a run ends: bad input, a bad variable or a refused change exits 1 with one clear line on
// stderr (and the usage, for bad input) and stores nothing; `--help` prints the usage and exits 0.
import type { DataSource } from "typeorm";
import { ConfigError, loadConfig, type Config } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { locateDatabase, type DatabaseLocation } from "./database.js";
import { openDatabase } from "./db/data-source.js";
import { AppError } from "./domain/errors.js";

/** Bad command-line input: exit 1 with the message and the usage (`help`: the usage alone, exit 0). */
export class UsageError extends Error {}

/** What a command's work gets: the configuration, a stderr logger and the open database. */
export interface CommandContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly location: DatabaseLocation;
  readonly db: DataSource;
}

export interface Command<C> {
  /** The name its lines start with, e.g. `admin`. */
  readonly name: string;
  readonly usage: string;
  /** Parses the arguments (before the configuration is read); throws UsageError. */
  parse(argv: readonly string[]): C;
  /** Checks the parsed command against the configuration before the database is touched. */
  check?(command: C, config: Config): void;
  work(command: C, context: CommandContext): Promise<void>;
}

function describe(err: unknown): string {
  if (err instanceof AppError) {
    const fields = err.violations.map((v) => `${v.field}: ${v.description}`);
    return `${err.reason}: ${fields.length > 0 ? fields.join("; ") : err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Runs `command` on process.argv and sets process.exitCode. */
export async function runCommand<C>(command: Command<C>): Promise<void> {
  let location: DatabaseLocation | undefined;
  let exitCode = 0;
  try {
    const parsed = command.parse(process.argv.slice(2));
    const config = loadConfig();
    command.check?.(parsed, config);
    // The log (the embedded database starting, warnings) goes to stderr: stdout is the command's.
    const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, process.stderr);
    location = await locateDatabase(config, logger);
    const db = await openDatabase({ url: location.url });
    try {
      await command.work(parsed, { config, logger, location, db });
    } finally {
      await db.destroy();
    }
  } catch (err) {
    exitCode = err instanceof UsageError && err.message === "help" ? 0 : 1;
    const { name, usage } = command;
    if (err instanceof UsageError) process.stderr.write(`${name}: ${err.message === "help" ? "" : `${err.message}\n`}${usage}\n`);
    else if (err instanceof ConfigError) process.stderr.write(err.errors.map((line) => `${name}: ${line}\n`).join(""));
    else process.stderr.write(`${name}: ${describe(err)}\n`);
  } finally {
    await location?.stop();
  }
  process.exitCode = exitCode;
}
