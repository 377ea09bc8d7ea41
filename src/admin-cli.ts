// `npm run admin -- grant <email|username> <role>`: gives an account a role, for the first
// administrator of a deployment (no one can call AdminService before one exists). The same
// domain code as AdminService.SetUserRole (src/domain/admin/admin.ts), acting with the highest
// role's powers, audited on the account with actor "cli". The last active holder of the highest
// role cannot be demoted here either (LAST_OWNER). Bad input exits 1 with a clear message and
// stores nothing; the outcome is one line on stderr.
import { runCommand, UsageError } from "./cli.js";
import { createAdministration } from "./domain/admin/admin.js";
import { createRoles } from "./domain/admin/roles.js";
import { createAuditLog } from "./domain/audit/audit.js";
import { systemClock } from "./domain/clock.js";
import { normalizeEmail, normalizeUsername } from "./domain/accounts/identifiers.js";
import { createSessions } from "./domain/sessions/sessions.js";
import { createRevocations } from "./domain/tokens/revocation.js";
import { createStore } from "./store/index.js";

const USAGE = `usage: npm run admin -- grant <email|username> <role>
  Gives the account the role (one of ROLES); audited with actor "cli".`;

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

await runCommand({
  name: "admin",
  usage: USAGE,
  parse: parseCommand,
  check({ role }, config) {
    const roles = createRoles(config.roles);
    if (!roles.has(role)) throw new UsageError(`unknown role "${role}": ROLES is ${roles.all.join(",")}`);
  },
  async work({ identifier, role }, { config, logger, db }) {
    const roles = createRoles(config.roles);
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
  },
});
