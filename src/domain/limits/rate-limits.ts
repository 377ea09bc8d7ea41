// The one rate-limit mechanism, shared by every instance through PostgreSQL. Each key holds a
// sliding log: the times of its hits still inside the window. A hit is checked and recorded by
// one conditional upsert (the row lock orders concurrent callers on any instance), so a limit
// of N admits at most N hits in any window-long interval, never N per instance or 2N across a
// fixed-window boundary. Rules may add exponential backoff after a number of free hits.
// The admission rule is SQL (rate_limit_next_admission, src/store/rate-limits.ts): the times
// announced here (retry after, next admission) are its answers, never a second implementation.
import { isIPv6 } from "node:net";
import type { RateLimitRule, Store } from "../../store/index.js";
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

/** What the rate limits need of the store. */
export type RateLimitDb = Pick<Store, "transaction" | "direct" | "rateLimits">;

/** A rule as the store takes it: a rule without backoff has every hit free. */
function storedRule(rule: RateRule): RateLimitRule {
  const backoff = rule.backoff ?? { free: rule.limit, baseMs: 0, maxMs: 0 };
  return { key: rule.key, limit: rule.limit, windowMs: rule.windowMs, free: backoff.free, baseMs: backoff.baseMs, maxMs: backoff.maxMs };
}

export function createRateLimits(db: RateLimitDb, clock: Clock): RateLimits {
  let takes = 0;

  return {
    async take(rules) {
      const now = clock.now();
      if (rules.length === 0) return { keys: [], at: now, nextAt: now };
      // One order for every caller, so that two transactions never wait on each other in a cycle.
      const unique = [...new Map(rules.map((r) => [r.key, r])).values()].sort((a, b) => (a.key < b.key ? -1 : 1));
      const nextAt = await db.transaction(async (tx) => {
        const refused: RateRule[] = [];
        let next = now.getTime();
        for (const rule of unique) {
          const admitted = await db.rateLimits.admit(tx, storedRule(rule), now);
          if (admitted) next = Math.max(next, admitted.getTime());
          else refused.push(rule);
        }
        if (refused.length === 0) return next;
        // Refused: work out when to come back, then roll everything back.
        let retryAt = now.getTime();
        for (const rule of refused) retryAt = Math.max(retryAt, (await db.rateLimits.nextAdmission(tx, storedRule(rule), now)).getTime());
        throw new RateLimitedError(
          refused.map((r) => r.key),
          `rate limited by ${refused.map((r) => r.key.split(":").slice(0, 2).join(":")).join(", ")}`,
          Math.max(1, retryAt - now.getTime()),
        );
      });
      if (++takes % SWEEP_EVERY === 0) await db.rateLimits.sweep(db.direct, now);
      return { keys: unique.map((r) => r.key), at: now, nextAt: new Date(nextAt) };
    },

    async refund(reservation) {
      if (reservation.keys.length === 0) return;
      await db.rateLimits.refund(db.direct, reservation.keys, reservation.at);
    },
  };
}
