// What the keyring needs of the database: the HMAC keys of codes and service keys (random, stored
// sealed: src/domain/secrets/hmac-keys.ts) and every sealed column, for `npm run keys:rewrap`.
import { affected, rows, type Tx } from "./tx.js";

/** The HMAC keys' purposes: one key each, never shared. */
export type HmacPurpose = "backup-codes" | "otp-codes" | "service-keys";

export interface HmacKeyRow {
  readonly keySealed: Buffer;
  /** The key derived from the key-encryption key before issue 18, while stored hashes need it. */
  readonly legacyKeySealed: Buffer | null;
}

/**
 * A column of sealed values: its table, the primary key that pages through it, and the associated
 * data each value was sealed with (the same string the sealing module passes). A module that
 * seals a new column adds it to SEALED_COLUMNS.
 */
export interface SealedColumn {
  readonly table: string;
  readonly id: string;
  readonly column: string;
  /** The associated data of the row whose primary key is `id`. */
  aad(id: string): string;
}

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: "signing_keys", id: "kid", column: "private_key_sealed", aad: (kid) => kid },
  { table: "totp_credentials", id: "user_id", column: "secret_sealed", aad: (userId) => `totp:${userId}` },
  { table: "hmac_keys", id: "purpose", column: "key_sealed", aad: (purpose) => `hmac:${purpose}` },
  { table: "hmac_keys", id: "purpose", column: "legacy_key_sealed", aad: (purpose) => `hmac-legacy:${purpose}` },
];

export interface SecretStore {
  /** Stores the purpose's key unless one is stored already (the first instance to start wins). */
  insertHmacKey(tx: Tx, purpose: HmacPurpose, key: HmacKeyRow, at: Date): Promise<void>;
  hmacKey(tx: Tx, purpose: HmacPurpose): Promise<HmacKeyRow | undefined>;
  /** Drops legacy keys no stored hash needs any more; returns the purposes dropped. */
  retireLegacyHmacKeys(tx: Tx, now: Date): Promise<string[]>;
  /** The sealed private key of the oldest signing key, if any (what the keyring sealed first). */
  oldestSealedSigningKey(tx: Tx): Promise<{ kid: string; sealed: Buffer } | undefined>;
  /** Up to `limit` non-null values of the column after primary key `after`, in key order. */
  sealedPage(tx: Tx, column: SealedColumn, after: string | undefined, limit: number): Promise<Array<{ id: string; sealed: Buffer }>>;
  /** Replaces one sealed value, unless the row changed since it was read; true when replaced. */
  replaceSealed(tx: Tx, column: SealedColumn, id: string, before: Buffer, after: Buffer): Promise<boolean>;
}

export const secretStore: SecretStore = {
  async insertHmacKey(tx, purpose, key, at) {
    // ON CONFLICT DO NOTHING: instances starting together each generate a key; one is stored
    // and every instance then reads that one.
    await affected(tx,
      `INSERT INTO hmac_keys (purpose, key_sealed, legacy_key_sealed, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (purpose) DO NOTHING`,
      [purpose, key.keySealed, key.legacyKeySealed, at],
    );
  },

  async hmacKey(tx, purpose) {
    const [row] = await rows<{ key_sealed: Buffer; legacy_key_sealed: Buffer | null }>(tx,
      `SELECT key_sealed, legacy_key_sealed FROM hmac_keys WHERE purpose = $1`, [purpose]);
    return row && { keySealed: row.key_sealed, legacyKeySealed: row.legacy_key_sealed };
  },

  async retireLegacyHmacKeys(tx, now) {
    // Hashes made under the legacy key are those stored before its purpose's key was created,
    // plus a day for instances of the previous version still running during a rolling upgrade.
    // One code is valid for at most OTP_TTL_SECONDS (600 s at most): a day covers it. A backup
    // code or service key hashed under it keeps it until it is used, replaced or revoked.
    const retired = await rows<{ purpose: string }>(tx,
      `UPDATE hmac_keys h SET legacy_key_sealed = NULL
       WHERE legacy_key_sealed IS NOT NULL AND h.created_at < $1::timestamptz - interval '1 day'
         AND CASE h.purpose
           WHEN 'otp-codes' THEN true
           WHEN 'backup-codes' THEN NOT EXISTS (
             SELECT 1 FROM backup_codes b WHERE b.used_at IS NULL AND b.created_at < h.created_at + interval '1 day')
           WHEN 'service-keys' THEN NOT EXISTS (
             SELECT 1 FROM service_account_keys k WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $1)
               AND k.created_at < h.created_at + interval '1 day')
           ELSE false
         END
       RETURNING purpose`,
      [now],
    );
    return retired.map((r) => r.purpose);
  },

  async oldestSealedSigningKey(tx) {
    const [row] = await rows<{ kid: string; private_key_sealed: Buffer }>(tx, `SELECT kid, private_key_sealed FROM signing_keys ORDER BY created_at LIMIT 1`);
    return row && { kid: row.kid, sealed: row.private_key_sealed };
  },

  async sealedPage(tx, c, after, limit) {
    // Keyset paging on the primary key (its own type and index, not its text).
    const from = after === undefined ? "" : `AND ${c.id} > $2`;
    return rows<{ id: string; sealed: Buffer }>(tx,
      `SELECT ${c.id}::text AS id, ${c.column} AS sealed FROM ${c.table}
       WHERE ${c.column} IS NOT NULL ${from} ORDER BY ${c.id} LIMIT $1`,
      after === undefined ? [limit] : [limit, after],
    );
  },

  async replaceSealed(tx, c, id, before, after) {
    // Conditional on the value read: a value changed meanwhile (a TOTP secret enrolled again) is
    // not overwritten with the old one; a second run reseals it if it needs it.
    const replaced = await affected(tx,
      `UPDATE ${c.table} SET ${c.column} = $3 WHERE ${c.id} = $1 AND ${c.column} = $2`,
      [id, before, after],
    );
    return replaced === 1;
  },
};
