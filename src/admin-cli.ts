// `npm run admin -- grant <email|username> <role>`: gives an account a role, for the first
// administrator of a deployment (no one can call AdminService before one exists). The same
// domain code as AdminService.SetUserRole (src/domain/admin/admin.ts), acting with the highest
// role's powers, audited on the account with actor "cli". The last active holder of the highest
// role cannot be demoted here either (LAST_OWNER). Bad input exits 1 with a clear message and
// stores nothing; the outcome is one line on stderr.
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { locateDatabase, type DatabaseLocation } from "./database.js";
import { openDatabase } from "./db/data-source.js";
import { createAdministration } from "./domain/admin/admin.js";
import { createRoles } from "./domain/admin/roles.js";
import { createAuditLog } from "./domain/audit/audit.js";
import { systemClock } from "./domain/clock.js";
import { AppError } from "./domain/errors.js";
import { normalizeEmail, normalizeUsername } from "./domain/accounts/identifiers.js";
import { createSessions } from "./domain/sessions/sessions.js";
import { createRevocations } from "./domain/tokens/revocation.js";
import { createStore } from "./store/index.js";

const USAGE = `usage: npm run admin -- grant <email|username> <role>
  Gives the account the role (one of ROLES); audited with actor "cli".`;

class UsageError extends Error {}

function parseCommand(argv: readonly string[]): { identifier: { kind: "email" | "username"; value: string }; role: string } {
  const [command, identifier, role, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h") throw new UsageError(command === undefined ? "no command" : "help");
  if (command !== "grant") throw new UsageError(`unknown command "${command}"`);
  if (identifier === undefined || role === undefined || rest.length > 0) throw new UsageError(`grant takes 2 arguments, got ${argv.length - 1}`);
  const email = identifier.includes("@") ? normalizeEmail(identifier) : undefined;
  const username = identifier.includes("@") ? undefined : normalizeUsername(identifier);
  if (email === undefined && username === undefined) throw new UsageError(`"${identifier}" is neither an email address nor a username`);
  return { identifier: email !== undefined ? { kind: "email", value: email } : { kind: "username", value: username! }, role };
}

function describe(err: unknown): string {
  if (err instanceof AppError) {
    const fields = err.violations.map((v) => `${v.field}: ${v.description}`);
    return `${err.reason}: ${fields.length > 0 ? fields.join("; ") : err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

let location: DatabaseLocation | undefined;
let exitCode = 0;
try {
  const { identifier, role } = parseCommand(process.argv.slice(2));
  const config = loadConfig();
  const roles = createRoles(config.roles);
  if (!roles.has(role)) throw new UsageError(`unknown role "${role}": ROLES is ${roles.all.join(",")}`);
  const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, process.stderr);
  location = await locateDatabase(config, logger);
  const db = await openDatabase({ url: location.url });
  try {
    const store = createStore(db, { defaultRole: config.roles.defaultRole });
    const audit = createAuditLog(store, systemClock);
    // Never started: a role change revokes nothing here, and the running instances learn of
    // any revocation by the database's triggers.
    const revocations = createRevocations(store, systemClock, logger, { accessTokenTtlSec: config.accessTokenTtlSec });
    const administration = createAdministration({
      db: store, clock: systemClock, roles, revocations, audit, logger, senders: {},
      sessions: createSessions(store, audit, systemClock, config, revocations),
      restoreDays: config.roles.accountRestoreDays,
    });
    const target = await administration.findByIdentifier(identifier.kind, identifier.value);
    const before = target.user.role;
    const after = await administration.setRole({ kind: "cli" }, target.user.id, role, false, { ip: "", userAgent: "admin-cli" });
    process.stderr.write(before === after.user.role ? `${target.user.id} already holds ${role}\n` : `${target.user.id}: ${before} -> ${after.user.role}\n`);
  } finally {
    await db.destroy();
  }
} catch (err) {
  exitCode = err instanceof UsageError && err.message === "help" ? 0 : 1;
  if (err instanceof UsageError) process.stderr.write(`admin: ${err.message === "help" ? "" : `${err.message}\n`}${USAGE}\n`);
  else if (err instanceof ConfigError) process.stderr.write(`admin: ${err.message}\n`);
  else process.stderr.write(`admin: ${describe(err)}\n`);
} finally {
  await location?.stop();
}
process.exitCode = exitCode;
