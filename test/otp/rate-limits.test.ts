// The rate-limit mechanism itself, against real PostgreSQL with a hand-moved clock: a sliding
// window (never more than the limit in any window-long interval), backoff, all-or-none takes,
// refunds, and concurrent takes through two connection pools (two instances) on one database.
import type { DataSource } from "typeorm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/db/data-source.js";
import { ManualClock } from "../../src/domain/clock.js";
import { AppError } from "../../src/domain/errors.js";
import { clientAddressKey, createRateLimits, type RateLimits, type RateRule } from "../../src/domain/limits/rate-limits.js";
import { createStore } from "../../src/store/index.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const clock = new ManualClock(new Date("2030-01-01T00:00:00Z"));
let database: TestDatabase;
let db: DataSource;
let other: DataSource;
let limits: RateLimits;
beforeAll(async () => {
  database = await createTestDatabase();
  db = await openDatabase({ url: database.url });
  other = await openDatabase({ url: database.url });
  limits = createRateLimits(createStore(db), clock);
});
afterAll(async () => {
  await db?.destroy();
  await other?.destroy();
  await database?.drop();
});

let serial = 0;
function rule(overrides: Partial<RateRule> = {}): RateRule {
  return { key: `test:${serial++}`, limit: 3, windowMs: 60_000, ...overrides };
}

async function refusal(promise: Promise<unknown>): Promise<number> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).reason).toBe("RATE_LIMITED");
  return (error as AppError).retryAfterMs!;
}

describe("rate limits", () => {
  it("admit at most `limit` hits in any window-long interval, even across a window boundary", async () => {
    const r = rule();
    const start = clock.now().getTime();
    for (const at of [50_000, 55_000, 59_000]) {
      clock.set(new Date(start + at));
      await limits.take([r]);
    }
    // A fixed window would start afresh at 60 s; this one still sees three hits.
    clock.set(new Date(start + 61_000));
    expect(await refusal(limits.take([r]))).toBe(49_000);
    clock.set(new Date(start + 109_999));
    expect(await refusal(limits.take([r]))).toBe(1);
    clock.set(new Date(start + 110_000));
    const taken = await limits.take([r]);
    // Full again: the next slot frees when the hit at 55 s leaves the window.
    expect(taken.nextAt.getTime()).toBe(start + 115_000);
  });

  it("back off exponentially after the free hits, up to the cap", async () => {
    const r = rule({ limit: 100, windowMs: 3_600_000, backoff: { free: 2, baseMs: 1_000, maxMs: 4_000 } });
    await limits.take([r]);
    await limits.take([r]);
    expect(await refusal(limits.take([r]))).toBe(1_000);
    for (const wait of [1_000, 2_000, 4_000, 4_000]) {
      clock.advance(wait - 1);
      expect(await refusal(limits.take([r]))).toBe(1);
      clock.advance(1);
      await limits.take([r]);
    }
  });

  it("take from every rule or from none, and refund what was taken", async () => {
    const tight = rule({ limit: 1 });
    const loose = rule({ limit: 5 });
    const first = await limits.take([tight, loose]);
    await refusal(limits.take([loose, tight]));
    const hits = async (key: string) =>
      ((await db.query(`SELECT cardinality(hits) AS n FROM rate_limits WHERE key = $1`, [key])) as Array<{ n: number }>)[0]?.n ?? 0;
    expect(await hits(loose.key)).toBe(1);
    await limits.refund(first);
    expect([await hits(tight.key), await hits(loose.key)]).toEqual([0, 0]);
    await limits.take([tight, loose]);
  });

  it("hold under concurrency from two instances on one database", async () => {
    const r = rule({ limit: 10, windowMs: 3_600_000 });
    const second = createRateLimits(createStore(other), clock);
    const results = await Promise.allSettled([...Array(40)].map((_, i) => (i % 2 === 0 ? limits : second).take([r])));
    expect(results.filter((x) => x.status === "fulfilled")).toHaveLength(10);
    for (const x of results) if (x.status === "rejected") expect((x.reason as AppError).reason).toBe("RATE_LIMITED");
  });

  it("key IPv6 clients by their /64", () => {
    expect(clientAddressKey("203.0.113.7")).toBe("203.0.113.7");
    expect(clientAddressKey("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(clientAddressKey("2001:0DB8:0001:0002:ffff:0:0:9")).toBe("2001:db8:1:2::/64");
    expect(clientAddressKey("::1")).toBe("0:0:0:0::/64");
    expect(clientAddressKey("")).toBe("unknown");
  });
});
