import type { MigrationInterface, QueryRunner } from "typeorm";

export class Mfa1763790000000 implements MigrationInterface {
  name = "Mfa1763790000000";

  async up(q: QueryRunner): Promise<void> {
    // One TOTP credential per account: pending until confirmed. The secret is sealed with the
    // key-encryption key; last_used_step makes every code single use.
    await q.query(`
      CREATE TABLE totp_credentials (
        user_id uuid PRIMARY KEY REFERENCES users (id),
        secret_sealed bytea NOT NULL,
        confirmed_at timestamptz,
        last_used_step bigint,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE backup_codes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        code_hash bytea NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX backup_codes_user_code_key ON backup_codes (user_id, code_hash)`);
    // A challenge is the half-finished sign-in between the first factor and the second.
    await q.query(`
      CREATE TABLE mfa_challenges (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        token_hash bytea NOT NULL UNIQUE,
        first_factor text[] NOT NULL,
        attempts int NOT NULL DEFAULT 0,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE mfa_challenges`);
    await q.query(`DROP TABLE backup_codes`);
    await q.query(`DROP TABLE totp_credentials`);
  }
}
