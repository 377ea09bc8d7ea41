import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Issue 17: passkeys (src/domain/passkeys/). A passkey is a WebAuthn credential of one account;
 * a WebAuthn challenge is the server half of one registration or sign-in ceremony, consumed once
 * (src/store/passkeys.ts).
 */
export class Passkeys1764410000000 implements MigrationInterface {
  name = "Passkeys1764410000000";

  async up(q: QueryRunner): Promise<void> {
    // credential_id is the authenticator's id (base64url), unique across accounts: a sign-in finds
    // the account by it. sign_count is the last signature counter seen (clone detection).
    await q.query(`
      CREATE TABLE passkeys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        credential_id text NOT NULL CONSTRAINT passkeys_credential_id_key UNIQUE,
        public_key bytea NOT NULL,
        sign_count bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
        transports text[] NOT NULL DEFAULT '{}',
        device_type text NOT NULL CHECK (device_type IN ('singleDevice', 'multiDevice')),
        backed_up boolean NOT NULL,
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz
      )`);
    await q.query(`CREATE INDEX passkeys_user_idx ON passkeys (user_id, created_at DESC)`);
    // The challenge is the random value the authenticator signs (public: it is in the options);
    // a registration challenge is bound to the account and session that started it.
    await q.query(`
      CREATE TABLE webauthn_challenges (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        challenge text NOT NULL,
        purpose text NOT NULL CHECK (purpose IN ('register', 'login')),
        user_id uuid REFERENCES users (id),
        session_id uuid,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((purpose = 'register') = (user_id IS NOT NULL AND session_id IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX webauthn_challenges_expires_idx ON webauthn_challenges (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE webauthn_challenges`);
    await q.query(`DROP TABLE passkeys`);
  }
}
