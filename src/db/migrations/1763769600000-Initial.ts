import type { MigrationInterface, QueryRunner } from "typeorm";

export class Initial1763769600000 implements MigrationInterface {
  name = "Initial1763769600000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email text,
        email_verified_at timestamptz,
        username text,
        phone text,
        phone_verified_at timestamptz,
        display_name text NOT NULL DEFAULT '',
        role text NOT NULL DEFAULT 'user',
        password_hash text,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
        tokens_valid_after timestamptz,
        mfa_enabled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz,
        CHECK (email IS NOT NULL OR username IS NOT NULL OR phone IS NOT NULL)
      )`);
    // Identifiers are unique among live accounts, case-insensitively; a deleted account frees them.
    await q.query(`CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL`);
    await q.query(`CREATE UNIQUE INDEX users_username_key ON users (lower(username)) WHERE deleted_at IS NULL AND username IS NOT NULL`);
    await q.query(`CREATE UNIQUE INDEX users_phone_key ON users (phone) WHERE deleted_at IS NULL AND phone IS NOT NULL`);

    await q.query(`
      CREATE TABLE sessions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        amr text[] NOT NULL,
        user_agent text NOT NULL DEFAULT '',
        ip_address text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        last_refresh_at timestamptz NOT NULL,
        absolute_expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoke_reason text
      )`);
    await q.query(`CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC) WHERE revoked_at IS NULL`);
    await q.query(`CREATE INDEX sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL`);

    await q.query(`
      CREATE TABLE refresh_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        token_hash bytea NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz
      )`);
    await q.query(`CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id)`);

    await q.query(`
      CREATE TABLE signing_keys (
        kid text PRIMARY KEY,
        alg text NOT NULL,
        public_jwk jsonb NOT NULL,
        private_key_sealed bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        activates_at timestamptz NOT NULL,
        retires_at timestamptz,
        expires_at timestamptz
      )`);

    await q.query(`
      CREATE TABLE audit_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid REFERENCES users (id),
        type text NOT NULL,
        ip_address text NOT NULL DEFAULT '',
        user_agent text NOT NULL DEFAULT '',
        session_id uuid,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_events_user_idx ON audit_events (user_id, created_at DESC, id DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_events`);
    await q.query(`DROP TABLE signing_keys`);
    await q.query(`DROP TABLE refresh_tokens`);
    await q.query(`DROP TABLE sessions`);
    await q.query(`DROP TABLE users`);
  }
}
