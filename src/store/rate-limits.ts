// Rate-limit keys: a sliding log of hit times per key. The admission rule lives in SQL once
// (rate_limit_next_admission, migration RateLimitNextAdmission): the upsert admits with it, and
// the times the service announces (retry after, resend at) are its answers too.
import { affected, rows, type Tx } from "./tx.js";

/** One rule's parameters, as the SQL functions take them. */
export interface RateLimitRule {
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
  /** Hits inside the window that need no wait; `limit` when the rule has no backoff. */
  readonly free: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export interface RateLimitStore {
  /**
   * Records one hit on `rule` at `now` when its rule admits one; returns when the key admits the
   * hit after it, or undefined (nothing recorded) when refused.
   */
  admit(tx: Tx, rule: RateLimitRule, now: Date): Promise<Date | undefined>;
  /** When `rule` admits its next hit, given what is stored at `now` (`now` when at once). */
  nextAdmission(tx: Tx, rule: RateLimitRule, now: Date): Promise<Date>;
  /** Removes the hit recorded at `at` from each key. */
  refund(tx: Tx, keys: readonly string[], at: Date): Promise<void>;
  /** Deletes keys whose every hit has left its window. */
  sweep(tx: Tx, now: Date): Promise<void>;
}

function params(rule: RateLimitRule, now: Date): unknown[] {
  return [rule.key, now, rule.windowMs, rule.limit, rule.free, rule.baseMs, rule.maxMs];
}

/** 'infinity' (a limit of 0) comes back from the driver as a number, not a Date. */
function instant(value: Date | number): Date {
  return value instanceof Date ? value : new Date(Number.isFinite(value) ? value : 8.64e15);
}

export const rateLimitStore: RateLimitStore = {
  async admit(tx, rule, now) {
    // A hit is checked and recorded by one conditional upsert (the row lock orders concurrent
    // callers on any instance), so a limit of N admits at most N hits in any window-long interval.
    const [row] = await rows<{ next_at: Date | number }>(tx,
      `INSERT INTO rate_limits AS r (key, hits, expires_at)
       SELECT $1, ARRAY[$2::timestamptz], $2::timestamptz + $3::bigint * interval '1 millisecond'
       WHERE $4::integer > 0
       ON CONFLICT (key) DO UPDATE SET
         hits = array_append(
           ARRAY(SELECT h FROM unnest(r.hits) AS h WHERE h > $2::timestamptz - $3::bigint * interval '1 millisecond' ORDER BY h),
           $2::timestamptz),
         expires_at = greatest(r.expires_at, EXCLUDED.expires_at)
       WHERE rate_limit_admits(r.hits, $2, $3, $4, $5, $6, $7)
       RETURNING rate_limit_next_admission(r.hits, $2, $3, $4, $5, $6, $7) AS next_at`,
      params(rule, now),
    );
    return row && instant(row.next_at);
  },

  async nextAdmission(tx, rule, now) {
    const [row] = await rows<{ next_at: Date | number }>(tx,
      `SELECT rate_limit_next_admission(coalesce((SELECT hits FROM rate_limits WHERE key = $1), '{}'), $2, $3, $4, $5, $6, $7) AS next_at`,
      params(rule, now),
    );
    return instant(row!.next_at);
  },

  async refund(tx, keys, at) {
    // Rows locked in key order, like take: a multi-row UPDATE locks them in scan order, which
    // deadlocked against a concurrent take of the same keys (seen with concurrent ChangePassword).
    await affected(tx,
      `UPDATE rate_limits r
       SET hits = r.hits[1:array_position(r.hits, $2::timestamptz) - 1] || r.hits[array_position(r.hits, $2::timestamptz) + 1:]
       FROM (SELECT key FROM rate_limits WHERE key = ANY($1) AND $2::timestamptz = ANY(hits) ORDER BY key FOR UPDATE) locked
       WHERE r.key = locked.key AND $2::timestamptz = ANY(r.hits)`,
      [[...keys], at],
    );
  },

  async sweep(tx, now) {
    await affected(tx, `DELETE FROM rate_limits WHERE expires_at < $1`, [now]);
  },
};
