// `npm run service-accounts -- <command>`: manages service accounts (issue 12, item 2) through the
// same domain code the admin API will call. Every change NOTIFYs the running instances, which
// reload their directories within a second. A new key is printed once, on stdout, alone on its
// line; everything else goes to stderr. Bad input exits 1 with a clear message and stores nothing.
//
//   create <name> --permissions a,b [--audiences x,y] [--description text]
//   list
//   add-key <name> [--expires-in-days N]
//   revoke-key <prefix>
//   add-certificate <name> (--spiffe spiffe://trust.domain/path | --subject "O=Example,CN=billing")
//   disable <name>
//   enable <name>
import { parseArgs } from "node:util";
import { runCommand, UsageError } from "./cli.js";
import { systemClock } from "./domain/clock.js";
import { PERMISSIONS } from "./domain/callers/permissions.js";
import { createServiceAccounts, type ServiceAccounts } from "./domain/callers/service-accounts.js";
import { loadHmacKeys } from "./domain/secrets/hmac-keys.js";
import { createStore } from "./store/index.js";

const USAGE = `usage: npm run service-accounts -- <command>
  create <name> --permissions a,b [--audiences x,y] [--description text]
  list
  add-key <name> [--expires-in-days N]
  revoke-key <prefix>
  add-certificate <name> --spiffe spiffe://trust.domain/path | --subject "O=Example,CN=billing"
  disable <name>
  enable <name>
permissions: ${PERMISSIONS.join(", ")}`;


const OPTIONS = {
  permissions: { type: "string" },
  audiences: { type: "string" },
  description: { type: "string" },
  "expires-in-days": { type: "string" },
  spiffe: { type: "string" },
  subject: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

function csv(value: string | undefined): string[] {
  return (value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** Which options each command takes: anything else is a usage error, not silently ignored. */
const ALLOWED: Record<string, ReadonlyArray<keyof Values>> = {
  create: ["permissions", "audiences", "description"],
  list: [],
  "add-key": ["expires-in-days"],
  "revoke-key": [],
  "add-certificate": ["spiffe", "subject"],
  disable: [],
  enable: [],
};
const ARITY: Record<string, number> = { create: 1, list: 0, "add-key": 1, "revoke-key": 1, "add-certificate": 1, disable: 1, enable: 1 };

/** Parses and checks the command line before any database is opened. */
function parseCommand(argv: readonly string[]): { command: string; args: string[]; values: Values } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [command, ...args] = parsed.positionals;
  if (parsed.values.help || command === undefined) throw new UsageError(command === undefined ? "no command" : "help");
  const allowed = ALLOWED[command];
  if (allowed === undefined) throw new UsageError(`unknown command "${command}"`);
  if (args.length !== ARITY[command]) throw new UsageError(`${command} takes ${ARITY[command]} argument(s), got ${args.length}`);
  for (const option of Object.keys(parsed.values) as Array<keyof Values>) {
    if (option !== "help" && !allowed.includes(option)) throw new UsageError(`${command} does not take --${option}`);
  }
  if (command === "create" && parsed.values.permissions === undefined) throw new UsageError("create needs --permissions");
  if (command === "add-certificate" && (parsed.values.spiffe === undefined) === (parsed.values.subject === undefined)) {
    throw new UsageError("add-certificate needs exactly one of --spiffe and --subject");
  }
  const days = parsed.values["expires-in-days"];
  if (days !== undefined && !/^[1-9]\d{0,4}$/.test(days)) throw new UsageError("--expires-in-days must be a whole number of days from 1 to 99999");
  return { command, args, values: parsed.values };
}

async function execute(accounts: ServiceAccounts, { command, args, values }: ReturnType<typeof parseCommand>): Promise<void> {
  const name = args[0]!;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const note = (line: string) => process.stderr.write(`${line}\n`);
  switch (command) {
    case "create": {
      const created = await accounts.create({ name, description: values.description, permissions: csv(values.permissions), audiences: csv(values.audiences) });
      note(`created service account ${created.name} (permissions: ${created.permissions.join(", ")}; audiences: ${created.audiences.join(", ") || "none"})`);
      return;
    }
    case "list":
      for (const account of await accounts.list()) {
        out(`${account.name}\t${account.status}\tpermissions=${account.permissions.join(",")}\taudiences=${account.audiences.join(",")}\t${account.description}`);
        for (const key of account.keys) {
          out(`  key ${key.prefix}\tcreated=${key.createdAt.toISOString()}\texpires=${key.expiresAt?.toISOString() ?? "never"}\tlast-used=${key.lastUsedAt?.toISOString() ?? "never"}`);
        }
        for (const certificate of account.certificates) out(`  ${certificate.kind} ${certificate.value.replaceAll("\n", ",")}`);
      }
      return;
    case "add-key": {
      const days = values["expires-in-days"];
      const expiresAt = days === undefined ? undefined : new Date(systemClock.now().getTime() + Number(days) * 86_400_000);
      const created = await accounts.addKey(name, expiresAt);
      note(`new key for ${name} (prefix ${created.prefix}, expires ${created.expiresAt?.toISOString() ?? "never"}); it is shown once:`);
      out(created.key);
      return;
    }
    case "revoke-key":
      note((await accounts.revokeKey(name)) ? `revoked key ${name}` : `key ${name} was already revoked`);
      return;
    case "add-certificate": {
      const added = await accounts.addCertificate(name, values.spiffe !== undefined ? { spiffe: values.spiffe } : { subject: values.subject! });
      note(`${name} is now also named by the certificate ${added.kind} ${added.value.replaceAll("\n", ",")}`);
      return;
    }
    case "disable":
      note((await accounts.disable(name)) ? `disabled ${name}: its keys, certificates and service tokens stop working` : `${name} was already disabled`);
      return;
    case "enable":
      note((await accounts.enable(name)) ? `enabled ${name}` : `${name} was already active`);
      return;
  }
}

await runCommand({
  name: "service-accounts",
  usage: USAGE,
  parse: parseCommand,
  async work(command, { config, location, db }) {
    const store = createStore(db);
    const accounts = createServiceAccounts({
      db: store,
      clock: systemClock,
      hash: (await loadHmacKeys(store, location.kek, systemClock))["service-keys"],
      bootstrapNames: new Set(config.serviceKeys.map((k) => k.name)),
    });
    await execute(accounts, command);
  },
});
