// Service accounts for tests, made through the domain (what the CLI calls), so the triggers,
// the directory reload and the key format are the real ones.
import type { App } from "../../src/app.js";

let counter = 0;

/** A name no other test of the run uses (`<tag>-<n>-<random>`). */
export function uniqueAccountName(tag: string): string {
  counter++;
  return `${tag}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Creates the account `name` with `permissions` and returns a new key for it. */
export async function accountWithKey(
  service: { readonly app: App },
  name: string,
  permissions: readonly string[],
  options: { readonly audiences?: readonly string[]; readonly expiresAt?: Date } = {},
): Promise<{ readonly name: string; readonly key: string; readonly prefix: string }> {
  await service.app.serviceAccounts.create({ name, permissions, audiences: options.audiences ?? [], description: `test account ${name}` });
  const { key, prefix } = await service.app.serviceAccounts.addKey(name, options.expiresAt);
  return { name, key, prefix };
}
