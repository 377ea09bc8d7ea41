import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Issue 18: the HMAC keys of backup codes, one-time codes and service keys, random and stored
 * sealed under the key-encryption keyring (src/domain/secrets/hmac-keys.ts), instead of derived
 * from the KEK. The service creates the rows at its first start (it holds the keyring; a
 * migration does not). `legacy_key_sealed`: the key derived the old way, while hashes need it.
 */
export class HmacKeys1764420000000 implements MigrationInterface {
  name = "HmacKeys1764420000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE hmac_keys (
        purpose text PRIMARY KEY CONSTRAINT hmac_keys_purpose_check CHECK (purpose IN ('backup-codes', 'otp-codes', 'service-keys')),
        key_sealed bytea NOT NULL,
        legacy_key_sealed bytea,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE hmac_keys`);
  }
}
