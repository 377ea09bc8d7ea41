import type { MigrationInterface, QueryRunner } from "typeorm";
import { REVOCATION_CHANNEL } from "../channels.js";

/**
 * Every instance keeps recent revocations in memory (src/domain/tokens/revocation.ts, fed by src/store/revocation-feed.ts). These triggers
 * tell all of them, through NOTIFY on commit, whatever path revoked a session or invalidated an
 * account's tokens, so that no writer can forget to.
 */
export class RevocationNotify1763770000000 implements MigrationInterface {
  name = "RevocationNotify1763770000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION identity_notify_session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
          PERFORM pg_notify('${REVOCATION_CHANNEL}', json_build_object('session', NEW.id, 'at', NEW.revoked_at)::text);
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER sessions_revoked_notify AFTER UPDATE OF revoked_at ON sessions
      FOR EACH ROW EXECUTE FUNCTION identity_notify_session_revoked()`);
    await q.query(`
      CREATE FUNCTION identity_notify_user_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.tokens_valid_after IS DISTINCT FROM OLD.tokens_valid_after OR NEW.status IS DISTINCT FROM OLD.status THEN
          PERFORM pg_notify('${REVOCATION_CHANNEL}',
            json_build_object('user', NEW.id, 'after', NEW.tokens_valid_after, 'status', NEW.status)::text);
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER users_tokens_notify AFTER UPDATE OF tokens_valid_after, status ON users
      FOR EACH ROW EXECUTE FUNCTION identity_notify_user_tokens()`);
    await q.query(`CREATE INDEX users_tokens_valid_after_idx ON users (tokens_valid_after) WHERE tokens_valid_after IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX users_tokens_valid_after_idx`);
    await q.query(`DROP TRIGGER users_tokens_notify ON users`);
    await q.query(`DROP FUNCTION identity_notify_user_tokens()`);
    await q.query(`DROP TRIGGER sessions_revoked_notify ON sessions`);
    await q.query(`DROP FUNCTION identity_notify_session_revoked()`);
  }
}
