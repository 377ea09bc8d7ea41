import type { MigrationInterface, QueryRunner } from "typeorm";
import { RATE_LIMIT_ADMITS_V1 } from "./1763780000000-OtpCodesAndRateLimits.js";

/**
 * The rate-limit admission rule, once: rate_limit_next_admission says when a key admits its next
 * hit, and rate_limit_admits (used by the conditional upsert in src/store/rate-limits.ts) is now
 * "that time has come". The store returns the same function's answer as the retry time and the
 * OTP resend time, so the rule that admits and the time that is announced cannot disagree.
 */
export class RateLimitNextAdmission1763900000000 implements MigrationInterface {
  name = "RateLimitNextAdmission1763900000000";

  async up(q: QueryRunner): Promise<void> {
    // The earliest instant one more hit is admitted, given `hits` at `now`: when fewer than
    // max_hits remain inside the window (the (n - max_hits + 1)-th oldest live hit leaves it),
    // and, after free_hits of them, base_ms * 2^(n - free_hits) (capped) after the last one.
    // `now` itself when a hit is admitted now; 'infinity' when never (max_hits 0).
    await q.query(`
      CREATE FUNCTION rate_limit_next_admission(hits timestamptz[], now timestamptz, window_ms bigint, max_hits integer,
                                                free_hits integer, base_ms bigint, max_delay_ms bigint)
      RETURNS timestamptz LANGUAGE sql STABLE AS $$
        SELECT greatest(
          now,
          CASE WHEN live.n >= max_hits THEN
            -- No such hit when max_hits is 0: then nothing is ever admitted.
            coalesce((SELECT h FROM unnest(hits) AS h WHERE h > now - window_ms * interval '1 millisecond'
                      ORDER BY h OFFSET live.n - max_hits LIMIT 1) + window_ms * interval '1 millisecond', 'infinity')
          END,
          CASE WHEN live.n >= free_hits AND live.last IS NOT NULL THEN
            live.last + least(max_delay_ms, base_ms * power(2, least(live.n - free_hits, 40)))::bigint * interval '1 millisecond'
          END)
        FROM (SELECT count(*)::integer AS n, max(h) AS last FROM unnest(hits) AS h WHERE h > now - window_ms * interval '1 millisecond') AS live
      $$`);
    // Whether one more hit is admitted at `now`: its next admission is not later than now.
    await q.query(`
      CREATE OR REPLACE FUNCTION rate_limit_admits(hits timestamptz[], now timestamptz, window_ms bigint, max_hits integer,
                                                   free_hits integer, base_ms bigint, max_delay_ms bigint)
      RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT rate_limit_next_admission(hits, now, window_ms, max_hits, free_hits, base_ms, max_delay_ms) <= now
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(RATE_LIMIT_ADMITS_V1);
    await q.query(`DROP FUNCTION rate_limit_next_admission(timestamptz[], timestamptz, bigint, integer, integer, bigint, bigint)`);
  }
}
