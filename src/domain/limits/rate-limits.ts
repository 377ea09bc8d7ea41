// The one rate-limit mechanism, shared by every instance through PostgreSQL. Each key holds a
// sliding log: the times of its hits still inside the window. A hit is checked and recorded by
// one conditional upsert (the row lock orders concurrent callers on any instance), so a limit
// of N admits at most N hits in any window-long interval, never N per instance or 2N across a
// fixed-window boundary. Rules may add exponential backoff after a number of free hits.
import { isIPv6 } from "node:net";
import type { DataSource } from "typeorm";
import type { Clock } from "../clock.js";
import { AppError } from "../errors.js";

export interface Backoff {
  /** Hits inside the window that need no wait. */
  readonly free: number;
  /** The wait after the first hit beyond `free`; it doubles with each further hit. */
  readonly baseMs: number;
  readonly maxMs: number;
}

export interface RateRule {
  /** Namespaced, e.g. `otp-send:dest:email:ada@example.com`. */
  readonly key: string;
  /** Hits admitted inside any window-long interval. */
  readonly limit: number;
  readonly windowMs: number;
  readonly backoff?: Backoff;
}

/** The hits one `take` recorded; `refund` gives them back. */
export interface Reservation {
  readonly keys: readonly string[];
  readonly at: Date;
  /** Earliest time the same rules admit another hit. */
  readonly nextAt: Date;
}

export interface RateLimits {
  /**
   * Records one hit on every rule, all or none: when any rule is exhausted nothing is recorded
   * and RATE_LIMITED is thrown with `retryAfterMs`.
   */
  take(rules: readonly RateRule[]): Promise<Reservation>;
  /** Removes the hits of a reservation: the attempt turned out not to count. */
  refund(reservation: Reservation): Promise<void>;
}

const SWEEP_EVERY = 500;

/** RATE_LIMITED, naming the rules that refused (for metrics; never shown to the client). */
export class RateLimitedError extends AppError {
  constructor(readonly refusedKeys: readonly string[], message: string, retryAfterMs: number) {
    super("RATE_LIMITED", message, { retryAfterMs });
  }
}

/** When `rule` admits its next hit, given its hits (epoch ms) at `now`. */
export function nextAdmission(rule: RateRule, hits: readonly number[], now: number): number {
  const live = hits.filter((h) => h > now - rule.windowMs).sort((a, b) => a - b);
  const n = live.length;
  let at = now;
  if (n >= rule.limit) at = Math.max(at, live[n - rule.limit]! + rule.windowMs);
  const backoff = rule.backoff;
  if (backoff && n >= backoff.free) {
    const delay = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(n - backoff.free, 40));
    at = Math.max(at, live[n - 1]! + delay);
  }
  return at;
}

/**
 * The key part for a client address. IPv6 hosts usually own a whole /64, so one counter covers
 * it; otherwise rotating through its addresses would evade every per-IP limit.
 */
export function clientAddressKey(ip: string): string {
  if (ip === "") return "unknown";
  if (!isIPv6(ip)) return ip;
  const [head = "", tail] = ip.toLowerCase().split("::");
  const parts = (s: string | undefined) => (s ? s.split(":") : []);
  const left = parts(head);
  const right = parts(tail);
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(":")}::/64`;
}

export function createRateLimits(db: DataSource, clock: Clock): RateLimits {
  let takes = 0;

  async function sweep(now: Date): Promise<void> {
    await db.query(`DELETE FROM rate_limits WHERE expires_at < $1`, [now]);
  }

  return {
    async take(rules) {
      const now = clock.now();
      if (rules.length === 0) return { keys: [], at: now, nextAt: now };
      // One order for every caller, so that two transactions never wait on each other in a cycle.
      const unique = [...new Map(rules.map((r) => [r.key, r])).values()].sort((a, b) => (a.key < b.key ? -1 : 1));
      const outcome = await db.transaction(async (manager) => {
        const refused: RateRule[] = [];
        const recorded = new Map<string, number[]>();
        for (const rule of unique) {
          const backoff = rule.backoff ?? { free: rule.limit, baseMs: 0, maxMs: 0 };
          const rows = (await manager.query(
            `INSERT INTO rate_limits AS r (key, hits, expires_at)
             SELECT $1, ARRAY[$2::timestamptz], $2::timestamptz + $3::bigint * interval '1 millisecond'
             WHERE $4::integer > 0
             ON CONFLICT (key) DO UPDATE SET
               hits = array_append(
                 ARRAY(SELECT h FROM unnest(r.hits) AS h WHERE h > $2::timestamptz - $3::bigint * interval '1 millisecond' ORDER BY h),
                 $2::timestamptz),
               expires_at = greatest(r.expires_at, EXCLUDED.expires_at)
             WHERE rate_limit_admits(r.hits, $2, $3, $4, $5, $6, $7)
             RETURNING hits`,
            [rule.key, now, rule.windowMs, rule.limit, backoff.free, backoff.baseMs, backoff.maxMs],
          )) as Array<{ hits: Date[] }>;
          if (rows[0]) recorded.set(rule.key, rows[0].hits.map((h) => h.getTime()));
          else refused.push(rule);
        }
        if (refused.length === 0) return { recorded };
        // Refused: work out when to come back, then roll everything back.
        const current = (await manager.query(`SELECT key, hits FROM rate_limits WHERE key = ANY($1)`, [refused.map((r) => r.key)])) as Array<{
          key: string;
          hits: Date[];
        }>;
        const hitsOf = new Map(current.map((row) => [row.key, row.hits.map((h) => h.getTime())]));
        const retryAt = Math.max(...refused.map((rule) => nextAdmission(rule, hitsOf.get(rule.key) ?? [], now.getTime())));
        throw new RateLimitedError(
          refused.map((r) => r.key),
          `rate limited by ${refused.map((r) => r.key.split(":").slice(0, 2).join(":")).join(", ")}`,
          Math.max(1, retryAt - now.getTime()),
        );
      });
      if (++takes % SWEEP_EVERY === 0) await sweep(now);
      const nextAt = Math.max(...unique.map((rule) => nextAdmission(rule, outcome.recorded.get(rule.key) ?? [], now.getTime())));
      return { keys: unique.map((r) => r.key), at: now, nextAt: new Date(nextAt) };
    },

    async refund(reservation) {
      if (reservation.keys.length === 0) return;
      // Rows locked in key order, like take: a multi-row UPDATE locks them in scan order, which
      // deadlocked against a concurrent take of the same keys (seen with concurrent ChangePassword).
      await db.query(
        `UPDATE rate_limits r
         SET hits = r.hits[1:array_position(r.hits, $2::timestamptz) - 1] || r.hits[array_position(r.hits, $2::timestamptz) + 1:]
         FROM (SELECT key FROM rate_limits WHERE key = ANY($1) AND $2::timestamptz = ANY(hits) ORDER BY key FOR UPDATE) locked
         WHERE r.key = locked.key AND $2::timestamptz = ANY(r.hits)`,
        [reservation.keys, reservation.at],
      );
    },
  };
}
