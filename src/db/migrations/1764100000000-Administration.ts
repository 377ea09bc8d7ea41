import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * Administration (issue 15): when an account was disabled (AdminService shows it; enabling clears
 * it), who acted on an account when it was not the person (`actor` of an audit event:
 * `user:<id>`, `service:<name>` or `cli`), and an index for ListUsers' stable order.
 */
export class Administration1764100000000 implements MigrationInterface {
  name = "Administration1764100000000";

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE users ADD COLUMN disabled_at timestamptz`);
    await q.query(`ALTER TABLE audit_events ADD COLUMN actor text`);
    await q.query(`CREATE INDEX users_created_idx ON users (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX users_created_idx`);
    await q.query(`ALTER TABLE audit_events DROP COLUMN actor`);
    await q.query(`ALTER TABLE users DROP COLUMN disabled_at`);
  }
}
