// Service accounts, their API keys and certificate identities (ServiceAccounts migration). The
// domain (src/domain/callers/) keeps all of them in memory; `snapshot` is what it loads.
import { affected, rows, type Tx } from "./tx.js";

export type ServiceAccountStatus = "active" | "disabled";
export type CertificateKind = "spiffe" | "subject";

export interface ServiceAccountRow {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly status: ServiceAccountStatus;
  readonly permissions: readonly string[];
  readonly audiences: readonly string[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly tokensValidAfter: Date | null;
}

export interface ServiceKeyRow {
  readonly id: string;
  readonly accountId: string;
  readonly prefix: string;
  readonly hash: Buffer;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
  readonly lastUsedAt: Date | null;
}

export interface ServiceCertificateRow {
  readonly id: string;
  readonly accountId: string;
  readonly kind: CertificateKind;
  readonly value: string;
  readonly createdAt: Date;
}

/** Everything the in-memory directory holds, read in one transaction so the parts agree. */
export interface ServiceAccountsSnapshot {
  readonly accounts: readonly ServiceAccountRow[];
  readonly keys: readonly ServiceKeyRow[];
  readonly certificates: readonly ServiceCertificateRow[];
}

export interface NewServiceAccount {
  readonly name: string;
  readonly description: string;
  readonly permissions: readonly string[];
  readonly audiences: readonly string[];
}

export interface ServiceAccountStore {
  /** Inserts the account; UniqueViolationError when the name is taken. */
  insert(tx: Tx, account: NewServiceAccount, now: Date): Promise<ServiceAccountRow>;
  byName(tx: Tx, name: string): Promise<ServiceAccountRow | undefined>;
  list(tx: Tx): Promise<ServiceAccountRow[]>;
  /**
   * Sets the status of the account `name` when it differs, and tokens_valid_after = now: the
   * account, and whether anything changed (false: unknown, or already in that status).
   */
  setStatus(tx: Tx, name: string, status: ServiceAccountStatus, now: Date): Promise<boolean>;
  /** Inserts a key for the account `name`; false when there is no such account. */
  insertKey(tx: Tx, name: string, key: { prefix: string; hash: Buffer; expiresAt: Date | null }, now: Date): Promise<boolean>;
  /** Revokes the key with `prefix` unless it is revoked already; whether it did. */
  revokeKey(tx: Tx, prefix: string, now: Date): Promise<boolean>;
  keyByPrefix(tx: Tx, prefix: string): Promise<ServiceKeyRow | undefined>;
  /** Inserts a certificate identity for `name`; false when there is no such account, UniqueViolationError when taken. */
  insertCertificate(tx: Tx, name: string, certificate: { kind: CertificateKind; value: string }, now: Date): Promise<boolean>;
  /** Records that keys were used at `at`, never moving last_used_at backwards. */
  touchKeys(tx: Tx, keyIds: readonly string[], at: Date): Promise<void>;
  snapshot(tx: Tx): Promise<ServiceAccountsSnapshot>;
}

interface AccountRecord {
  id: string;
  name: string;
  description: string;
  status: ServiceAccountStatus;
  permissions: string[];
  audiences: string[];
  created_at: Date;
  updated_at: Date;
  tokens_valid_after: Date | null;
}

interface KeyRecord {
  id: string;
  account_id: string;
  prefix: string;
  hash: Buffer;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

interface CertificateRecord {
  id: string;
  account_id: string;
  kind: CertificateKind;
  value: string;
  created_at: Date;
}

const ACCOUNT_COLUMNS = "id, name, description, status, permissions, audiences, created_at, updated_at, tokens_valid_after";

function account(r: AccountRecord): ServiceAccountRow {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    status: r.status,
    permissions: r.permissions,
    audiences: r.audiences,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    tokensValidAfter: r.tokens_valid_after,
  };
}

function key(r: KeyRecord): ServiceKeyRow {
  return {
    id: r.id,
    accountId: r.account_id,
    prefix: r.prefix,
    hash: r.hash,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  };
}

export const serviceAccountStore: ServiceAccountStore = {
  async insert(tx, a, now) {
    const [row] = await rows<AccountRecord>(
      tx,
      `INSERT INTO service_accounts (name, description, permissions, audiences, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $5) RETURNING ${ACCOUNT_COLUMNS}`,
      [a.name, a.description, a.permissions, a.audiences, now],
    );
    return account(row!);
  },
  async byName(tx, name) {
    const [row] = await rows<AccountRecord>(tx, `SELECT ${ACCOUNT_COLUMNS} FROM service_accounts WHERE name = $1`, [name]);
    return row && account(row);
  },
  async list(tx) {
    return (await rows<AccountRecord>(tx, `SELECT ${ACCOUNT_COLUMNS} FROM service_accounts ORDER BY name`)).map(account);
  },
  async setStatus(tx, name, status, now) {
    // One conditional statement: only a real change moves tokens_valid_after, so a repeated
    // disable does not look like a new revocation. Enabling sets it too: tokens issued before
    // the account was disabled (still unexpired) must not come back to life.
    const count = await affected(
      tx,
      `UPDATE service_accounts SET status = $2, tokens_valid_after = $3, updated_at = $3 WHERE name = $1 AND status <> $2`,
      [name, status, now],
    );
    return count > 0;
  },
  async insertKey(tx, name, k, now) {
    const inserted = await rows<{ id: string }>(
      tx,
      `INSERT INTO service_account_keys (account_id, prefix, hash, expires_at, created_at)
       SELECT id, $2, $3, $4, $5 FROM service_accounts WHERE name = $1 RETURNING id`,
      [name, k.prefix, k.hash, k.expiresAt, now],
    );
    return inserted.length > 0;
  },
  async revokeKey(tx, prefix, now) {
    // Conditional: revoking twice keeps the first time.
    return (await affected(tx, `UPDATE service_account_keys SET revoked_at = $2 WHERE prefix = $1 AND revoked_at IS NULL`, [prefix, now])) > 0;
  },
  async keyByPrefix(tx, prefix) {
    const [row] = await rows<KeyRecord>(tx, `SELECT * FROM service_account_keys WHERE prefix = $1`, [prefix]);
    return row && key(row);
  },
  async insertCertificate(tx, name, c, now) {
    const inserted = await rows<{ id: string }>(
      tx,
      `INSERT INTO service_account_certificates (account_id, kind, value, created_at)
       SELECT id, $2, $3, $4 FROM service_accounts WHERE name = $1 RETURNING id`,
      [name, c.kind, c.value, now],
    );
    return inserted.length > 0;
  },
  async touchKeys(tx, keyIds, at) {
    if (keyIds.length === 0) return;
    await affected(
      tx,
      `UPDATE service_account_keys SET last_used_at = $2 WHERE id = ANY($1::uuid[]) AND (last_used_at IS NULL OR last_used_at < $2)`,
      [keyIds, at],
    );
  },
  async snapshot(tx) {
    const [accounts, keys, certificates] = [
      await rows<AccountRecord>(tx, `SELECT ${ACCOUNT_COLUMNS} FROM service_accounts`),
      await rows<KeyRecord>(tx, `SELECT * FROM service_account_keys WHERE revoked_at IS NULL`),
      await rows<CertificateRecord>(tx, `SELECT * FROM service_account_certificates`),
    ];
    return {
      accounts: accounts.map(account),
      keys: keys.map(key),
      certificates: certificates.map((r) => ({ id: r.id, accountId: r.account_id, kind: r.kind, value: r.value, createdAt: r.created_at })),
    };
  },
};
