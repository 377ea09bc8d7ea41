import type { MigrationInterface, QueryRunner } from "typeorm";

/**
 * One-time codes (src/domain/otp-codes.ts) and the rate limits every instance shares
 * (src/domain/rate-limits.ts).
 */
/**
 * Whether one more hit is admitted at `now` (this migration's version; 1763900000000 redefines it
 * through rate_limit_next_admission and restores this one on the way down).
 */
export const RATE_LIMIT_ADMITS_V1 = `
      CREATE OR REPLACE FUNCTION rate_limit_admits(hits timestamptz[], now timestamptz, window_ms bigint, max_hits integer,
                                                   free_hits integer, base_ms bigint, max_delay_ms bigint)
      RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT live.n < max_hits AND (
          live.n < free_hits OR live.last IS NULL OR
          now >= live.last + least(max_delay_ms, base_ms * power(2, least(live.n - free_hits, 40)))::bigint * interval '1 millisecond'
        )
        FROM (SELECT count(*)::integer AS n, max(h) AS last FROM unnest(hits) AS h WHERE h > now - window_ms * interval '1 millisecond') AS live
      $$`;

export class OtpCodesAndRateLimits1763780000000 implements MigrationInterface {
  name = "OtpCodesAndRateLimits1763780000000";

  async up(q: QueryRunner): Promise<void> {
    // At most one live code per destination and purpose: sending again replaces it. The code
    // itself is never stored, only its HMAC. `user_id` binds VERIFY_CONTACT codes to the caller.
    await q.query(`
      CREATE TABLE otp_codes (
        channel text NOT NULL CHECK (channel IN ('sms', 'email')),
        destination text NOT NULL,
        purpose text NOT NULL CHECK (purpose IN ('login', 'verify_contact', 'password_reset')),
        user_id uuid REFERENCES users (id),
        code_hash bytea NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        consumed_at timestamptz,
        PRIMARY KEY (channel, destination, purpose)
      )`);
    await q.query(`CREATE INDEX otp_codes_expires_idx ON otp_codes (expires_at)`);

    // A sliding log per key: the times of the hits still inside the key's window.
    await q.query(`
      CREATE TABLE rate_limits (
        key text PRIMARY KEY,
        hits timestamptz[] NOT NULL,
        expires_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX rate_limits_expires_idx ON rate_limits (expires_at)`);
    // Whether one more hit is admitted at `now`: fewer than max_hits inside the window, and
    // after free_hits of them, at least base_ms * 2^(n - free_hits) (capped) since the last one.
    await q.query(RATE_LIMIT_ADMITS_V1);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION rate_limit_admits(timestamptz[], timestamptz, bigint, integer, integer, bigint, bigint)`);
    await q.query(`DROP TABLE rate_limits`);
    await q.query(`DROP TABLE otp_codes`);
  }
}
