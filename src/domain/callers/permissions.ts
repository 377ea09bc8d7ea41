// What a service account may be granted: one closed set, declared once. Every AUDIENCE_INTERNAL
// RPC names one of these in the proto (test/unit/permissions.test.ts walks the descriptors).

export const PERMISSIONS = [
  "tokens.verify",
  "tokens.issue",
  "users.read",
  "users.manage",
  "authz.check",
  "client-address.forward",
] as const;

export type Permission = (typeof PERMISSIONS)[number];

const known: ReadonlySet<string> = new Set(PERMISSIONS);

export function isPermission(value: string): value is Permission {
  return known.has(value);
}
