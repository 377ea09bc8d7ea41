import type { MigrationInterface, QueryRunner } from "typeorm";

/** Issue 17, items 1 and 2: sign-in with an OpenID Connect provider. */
export class FederatedIdentities1764400000000 implements MigrationInterface {
  name = "FederatedIdentities1764400000000";

  async up(q: QueryRunner): Promise<void> {
    // A provider's subject (`sub`) is stable and unique per issuer (OIDC Core 5.7); the email it
    // gave is kept for display only, never for lookups (it may change, or move to someone else).
    await q.query(`
      CREATE TABLE federated_identities (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users (id),
        provider text NOT NULL,
        subject text NOT NULL,
        email text,
        created_at timestamptz NOT NULL,
        CONSTRAINT federated_identities_provider_subject_key UNIQUE (provider, subject)
      )`);
    await q.query(`CREATE INDEX federated_identities_user_idx ON federated_identities (user_id, created_at)`);
    // A started sign-in or link: what the callback must match. Only the state's hash is stored
    // (a database reader cannot finish someone's sign-in); the PKCE verifier and nonce are sealed
    // with the key-encryption key, bound to the state's hash.
    await q.query(`
      CREATE TABLE federation_states (
        state_hash bytea PRIMARY KEY,
        provider text NOT NULL,
        secrets_sealed bytea NOT NULL,
        redirect_uri text NOT NULL,
        purpose text NOT NULL CHECK (purpose IN ('login', 'link')),
        user_id uuid REFERENCES users (id),
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        CHECK ((purpose = 'link') = (user_id IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX federation_states_expires_idx ON federation_states (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE federation_states`);
    await q.query(`DROP TABLE federated_identities`);
  }
}
