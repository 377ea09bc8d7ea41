// `npm run keys:rewrap`: reseals every sealed value (signing keys, TOTP secrets, HMAC keys) under
// the current key-encryption key, the first of KEY_ENCRYPTION_KEYS, and prints what it did. After
// it (and after every instance runs with the new keyring), an older key can be removed. Safe to
// run while the service serves, and again: a second run reseals nothing.
import { runCommand, UsageError } from "./cli.js";
import { rewrapAll } from "./domain/secrets/rewrap.js";
import { createStore } from "./store/index.js";

const USAGE = `usage: npm run keys:rewrap [-- --batch-size <n>]
Reseals every sealed value under the first key of KEY_ENCRYPTION_KEYS.`;

await runCommand({
  name: "keys:rewrap",
  usage: USAGE,
  parse(argv) {
    if (argv.includes("--help") || argv.includes("-h")) throw new UsageError("help");
    if (argv.length === 0) return { batchSize: 500 };
    if (argv.length === 2 && argv[0] === "--batch-size" && /^[1-9]\d{0,4}$/.test(argv[1]!)) return { batchSize: Number(argv[1]) };
    throw new UsageError(`unexpected arguments: ${argv.join(" ")}`);
  },
  async work({ batchSize }, { location, db }) {
    const counts = await rewrapAll(createStore(db), location.kek, batchSize);
    for (const c of counts) {
      process.stdout.write(`${c.column}: ${c.scanned} read, ${c.resealed} resealed, ${c.current} already under "${location.kek.current.id}", ${c.changed} changed meanwhile\n`);
    }
    const total = counts.reduce((sum, c) => sum + c.resealed, 0);
    process.stdout.write(`keys:rewrap: ${total} resealed under "${location.kek.current.id}"; keys other than it may be removed once every instance runs with this keyring\n`);
  },
});
