import type { MigrationInterface, QueryRunner } from "typeorm";
import { REVOCATION_CHANNEL } from "../channels.js";

/**
 * Service accounts (issue 12, item 2): named callers with permissions, their API keys (a public
 * prefix for lookup and a keyed hash, never the key) and their certificate identities.
 *
 * Every instance keeps all of them in memory (src/domain/callers/directory.ts), so every change to
 * the three tables NOTIFYs `{"services":true}` on the revocation channel and the instances reload
 * it. A change of an account's status or tokens_valid_after also sends what the users trigger
 * sends (RevocationNotify), for `service:<name>`: the service tokens of a disabled account then
 * stop verifying through the same in-memory revocation check as a person's.
 */
export class ServiceAccounts1764000000000 implements MigrationInterface {
  name = "ServiceAccounts1764000000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE service_accounts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        -- Becomes the sub (service:<name>) of the account's service tokens: never changes.
        name text NOT NULL CONSTRAINT service_accounts_name_key UNIQUE CONSTRAINT service_accounts_name_check CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
        description text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT 'active' CONSTRAINT service_accounts_status_check CHECK (status IN ('active', 'disabled')),
        permissions text[] NOT NULL DEFAULT '{}',
        -- The audiences the account may request service tokens for.
        audiences text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        tokens_valid_after timestamptz NULL
      )`);
    await q.query(`
      CREATE TABLE service_account_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES service_accounts (id),
        -- Public: the part of the key string that finds this row.
        prefix text NOT NULL CONSTRAINT service_account_keys_prefix_key UNIQUE,
        -- HMAC-SHA256 of the whole key string under a key derived from the KEK.
        hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NULL,
        revoked_at timestamptz NULL,
        last_used_at timestamptz NULL
      )`);
    await q.query(`CREATE INDEX service_account_keys_account_idx ON service_account_keys (account_id)`);
    await q.query(`
      CREATE TABLE service_account_certificates (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        account_id uuid NOT NULL REFERENCES service_accounts (id),
        kind text NOT NULL CONSTRAINT service_account_certificates_kind_check CHECK (kind IN ('spiffe', 'subject')),
        value text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT service_account_certificates_kind_value_key UNIQUE (kind, value)
      )`);
    await q.query(`CREATE INDEX service_account_certificates_account_idx ON service_account_certificates (account_id)`);
    // The name is the identity other services see (sub = service:<name>): renaming would hand
    // one account's history and audience grants to another name.
    await q.query(`
      CREATE FUNCTION identity_service_account_name_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.name IS DISTINCT FROM OLD.name THEN
          RAISE EXCEPTION 'service_accounts.name is immutable' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER service_accounts_name_immutable BEFORE UPDATE OF name ON service_accounts
      FOR EACH ROW EXECUTE FUNCTION identity_service_account_name_immutable()`);
    // NOTIFY payloads within one transaction are deduplicated by PostgreSQL: one reload per commit.
    await q.query(`
      CREATE FUNCTION identity_notify_services() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${REVOCATION_CHANNEL}', '{"services":true}');
        IF TG_TABLE_NAME = 'service_accounts' AND TG_OP = 'UPDATE' THEN
          IF NEW.tokens_valid_after IS DISTINCT FROM OLD.tokens_valid_after OR NEW.status IS DISTINCT FROM OLD.status THEN
            PERFORM pg_notify('${REVOCATION_CHANNEL}',
              json_build_object('user', 'service:' || NEW.name, 'after', NEW.tokens_valid_after, 'status', NEW.status)::text);
          END IF;
        END IF;
        RETURN NULL;
      END $$`);
    // Keys: not on last_used_at, which the instances write themselves (at most once a minute per
    // key) and which changes nothing the directory decides with.
    const events = {
      service_accounts: "INSERT OR UPDATE OR DELETE",
      service_account_keys: "INSERT OR UPDATE OF account_id, prefix, hash, expires_at, revoked_at OR DELETE",
      service_account_certificates: "INSERT OR UPDATE OR DELETE",
    };
    for (const [table, on] of Object.entries(events)) {
      await q.query(`
        CREATE TRIGGER ${table}_notify AFTER ${on} ON ${table}
        FOR EACH ROW EXECUTE FUNCTION identity_notify_services()`);
    }
    await q.query(`CREATE INDEX service_accounts_tokens_valid_after_idx ON service_accounts (tokens_valid_after) WHERE tokens_valid_after IS NOT NULL`);
    // Which service, if any, an audit event was recorded for (the caller of the RPC).
    await q.query(`ALTER TABLE audit_events ADD COLUMN caller text NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_events DROP COLUMN caller`);
    await q.query(`DROP TABLE service_account_certificates`);
    await q.query(`DROP TABLE service_account_keys`);
    await q.query(`DROP TABLE service_accounts`);
    await q.query(`DROP FUNCTION identity_notify_services()`);
    await q.query(`DROP FUNCTION identity_service_account_name_immutable()`);
  }
}
