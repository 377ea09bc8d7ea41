// Managing service accounts: what `npm run service-accounts` does now and the admin API will call
// later. Every change NOTIFYs through the tables' triggers, so every instance reloads its
// directory; `onChanged` also reloads this instance's at once.
import { UniqueViolationError, type CertificateKind, type ServiceAccountRow, type Store } from "../../store/index.js";
import type { Clock } from "../clock.js";
import { AppError, invalidField, Violations } from "../errors.js";
import { isPermission, PERMISSIONS } from "./permissions.js";
import { isSpiffeId, normalizeSubject } from "./identities.js";
import { newServiceKey, PREFIX_FORMAT, type ServiceKeyHasher } from "./service-keys.js";

/** The name becomes `sub = service:<name>` of the account's service tokens. */
export const SERVICE_ACCOUNT_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const AUDIENCE = /^[\x21-\x7e]{1,255}$/;
const MAX_DESCRIPTION = 500;

export interface NewServiceAccountInput {
  readonly name: string;
  readonly description?: string;
  readonly permissions: readonly string[];
  readonly audiences?: readonly string[];
}

export interface ServiceAccountView extends ServiceAccountRow {
  readonly keys: ReadonlyArray<{ readonly prefix: string; readonly createdAt: Date; readonly expiresAt: Date | null; readonly lastUsedAt: Date | null }>;
  readonly certificates: ReadonlyArray<{ readonly kind: CertificateKind; readonly value: string }>;
}

export type CertificateIdentityInput = { readonly spiffe: string } | { readonly subject: string };

export interface ServiceAccounts {
  create(input: NewServiceAccountInput): Promise<ServiceAccountRow>;
  /** Every account with its live (unrevoked) keys and its certificate identities. */
  list(): Promise<ServiceAccountView[]>;
  /** A new key for `name`: the key string is returned here once and never stored. */
  addKey(name: string, expiresAt?: Date): Promise<{ readonly key: string; readonly prefix: string; readonly expiresAt: Date | null }>;
  /** Revokes the key with `prefix`; false when it was revoked already. */
  revokeKey(prefix: string): Promise<boolean>;
  addCertificate(name: string, identity: CertificateIdentityInput): Promise<{ readonly kind: CertificateKind; readonly value: string }>;
  /** Whether the status changed (false: it was disabled already). */
  disable(name: string): Promise<boolean>;
  enable(name: string): Promise<boolean>;
}

export interface ServiceAccountsDeps {
  readonly db: Pick<Store, "direct" | "transaction" | "serviceAccounts">;
  readonly clock: Clock;
  readonly hash: ServiceKeyHasher;
  /** SERVICE_KEYS names: an account may not take one (the caller's name would be ambiguous). */
  readonly bootstrapNames?: ReadonlySet<string>;
  /** Called after every change (this instance's directory reloads at once). */
  readonly onChanged?: () => Promise<void>;
}

function checkName(violations: Violations, name: string): void {
  if (!SERVICE_ACCOUNT_NAME.test(name)) {
    violations.add("name", "INVALID_FORMAT", "a lower-case letter, then up to 62 lower-case letters, digits or hyphens");
  }
}

function requireName(name: string): void {
  const violations = new Violations();
  checkName(violations, name);
  violations.throwIfAny();
}

const notFound = (name: string) => new AppError("SERVICE_ACCOUNT_NOT_FOUND", `no service account named ${name}`);

export function createServiceAccounts({ db, clock, hash, bootstrapNames = new Set(), onChanged = async () => {} }: ServiceAccountsDeps): ServiceAccounts {
  const store = db.serviceAccounts;

  async function setStatus(name: string, status: "active" | "disabled"): Promise<boolean> {
    requireName(name);
    const changed = await store.setStatus(db.direct, name, status, clock.now());
    if (!changed && !(await store.byName(db.direct, name))) throw notFound(name);
    if (changed) await onChanged();
    return changed;
  }

  return {
    async create({ name, description = "", permissions, audiences = [] }) {
      const violations = new Violations();
      checkName(violations, name);
      if (description.length > MAX_DESCRIPTION) violations.add("description", "TOO_LONG", `at most ${MAX_DESCRIPTION} characters`);
      if (permissions.length === 0) violations.add("permissions", "REQUIRED", `at least one of ${PERMISSIONS.join(", ")}`);
      for (const permission of permissions) {
        if (!isPermission(permission)) violations.add("permissions", "UNKNOWN_PERMISSION", `"${permission}" is not one of ${PERMISSIONS.join(", ")}`);
      }
      for (const audience of audiences) {
        if (!AUDIENCE.test(audience)) violations.add("audiences", "INVALID_FORMAT", "1 to 255 printable characters, no spaces");
      }
      violations.throwIfAny();
      if (bootstrapNames.has(name)) throw new AppError("SERVICE_ACCOUNT_EXISTS", `${name} is a SERVICE_KEYS name`);
      try {
        const created = await store.insert(db.direct, { name, description, permissions: [...new Set(permissions)], audiences: [...new Set(audiences)] }, clock.now());
        await onChanged();
        return created;
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError("SERVICE_ACCOUNT_EXISTS", `service account ${name} exists`, { cause: err });
        throw err;
      }
    },

    async list() {
      return db.transaction(async (tx) => {
        const [accounts, snapshot] = [await store.list(tx), await store.snapshot(tx)];
        return accounts.map((account) => ({
          ...account,
          keys: snapshot.keys
            .filter((k) => k.accountId === account.id)
            .map((k) => ({ prefix: k.prefix, createdAt: k.createdAt, expiresAt: k.expiresAt, lastUsedAt: k.lastUsedAt })),
          certificates: snapshot.certificates.filter((c) => c.accountId === account.id).map((c) => ({ kind: c.kind, value: c.value })),
        }));
      });
    },

    async addKey(name, expiresAt) {
      requireName(name);
      const now = clock.now();
      if (expiresAt !== undefined && !(expiresAt.getTime() > now.getTime())) {
        throw invalidField("expires_at", "IN_THE_PAST", "the expiry must be in the future");
      }
      // A prefix collision (60 random bits) is retried with a new key rather than reported.
      for (let attempt = 0; ; attempt++) {
        const { key, prefix } = newServiceKey();
        try {
          const inserted = await store.insertKey(db.direct, name, { prefix, hash: hash.digest(key), expiresAt: expiresAt ?? null }, now);
          if (!inserted) throw notFound(name);
          await onChanged();
          return { key, prefix, expiresAt: expiresAt ?? null };
        } catch (err) {
          if (!(err instanceof UniqueViolationError) || attempt >= 2) throw err;
        }
      }
    },

    async revokeKey(prefix) {
      if (!PREFIX_FORMAT.test(prefix)) throw invalidField("prefix", "INVALID_FORMAT", "12 characters a-z, 2-7 (the part after isk_)");
      const revoked = await store.revokeKey(db.direct, prefix, clock.now());
      if (!revoked && !(await store.keyByPrefix(db.direct, prefix))) throw new AppError("SERVICE_KEY_NOT_FOUND", `no service key ${prefix}`);
      if (revoked) await onChanged();
      return revoked;
    },

    async addCertificate(name, identity) {
      const violations = new Violations();
      checkName(violations, name);
      let kind: CertificateKind;
      let value: string | undefined;
      if ("spiffe" in identity) {
        kind = "spiffe";
        value = isSpiffeId(identity.spiffe) ? identity.spiffe : undefined;
        if (value === undefined) violations.add("spiffe", "INVALID_FORMAT", "a SPIFFE ID: spiffe://<trust domain>/<path>");
      } else {
        kind = "subject";
        value = normalizeSubject(identity.subject);
        if (value === undefined) violations.add("subject", "INVALID_FORMAT", "attr=value pairs in certificate order, e.g. O=Example,CN=billing");
      }
      violations.throwIfAny();
      try {
        const inserted = await store.insertCertificate(db.direct, name, { kind, value: value! }, clock.now());
        if (!inserted) throw notFound(name);
        await onChanged();
        return { kind, value: value! };
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError("CERTIFICATE_IDENTITY_TAKEN", `${kind} ${value} is taken`, { cause: err });
        throw err;
      }
    },

    disable: (name) => setStatus(name, "disabled"),
    enable: (name) => setStatus(name, "active"),
  };
}
