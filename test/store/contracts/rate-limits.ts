// What any RateLimitStore must guarantee: the admission rule, and that the time it announces is
// exactly when it admits again (one rule: rate_limit_next_admission).
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { RateLimitRule } from "../../../src/store/index.js";
import { at, concurrently, type StoreContext } from "../support.js";

export function rateLimitStoreContract(ctx: StoreContext): void {
  const rule = (overrides: Partial<RateLimitRule> = {}): RateLimitRule => {
    const limit = overrides.limit ?? 3;
    return { key: `store-test:${randomUUID()}`, limit, windowMs: 60_000, free: limit, baseMs: 0, maxMs: 0, ...overrides };
  };
  const t0 = new Date("2031-01-01T00:00:00Z");

  describe("RateLimitStore", () => {
    it("admits `limit` hits in a window, then refuses until the announced time, and admits exactly then", async () => {
      const { store } = ctx;
      const r = rule();
      const nexts = [];
      for (let i = 0; i < 3; i++) nexts.push(await store.rateLimits.admit(store.direct, r, at(t0, i * 1000)));
      // At once while under the limit; after the third hit, when the first leaves the window.
      expect(nexts.map((d) => d?.getTime())).toEqual([t0.getTime(), t0.getTime() + 1000, t0.getTime() + 60_000]);
      expect(await store.rateLimits.admit(store.direct, r, at(t0, 30_000))).toBeUndefined();
      const retryAt = await store.rateLimits.nextAdmission(store.direct, r, at(t0, 30_000));
      expect(retryAt.getTime()).toBe(t0.getTime() + 60_000);
      expect(await store.rateLimits.admit(store.direct, r, at(retryAt, -1))).toBeUndefined();
      expect(await store.rateLimits.admit(store.direct, r, retryAt)).toBeDefined();
    });

    it("applies backoff after the free hits, doubling, and announces the same time it admits at", async () => {
      const { store } = ctx;
      const r = rule({ limit: 100, free: 2, baseMs: 1000, maxMs: 4000 });
      let now = t0;
      const waits: number[] = [];
      for (let i = 0; i < 6; i++) {
        const next = await store.rateLimits.admit(store.direct, r, now);
        expect(next).toBeDefined();
        waits.push(next!.getTime() - now.getTime());
        if (next!.getTime() > now.getTime()) {
          expect(await store.rateLimits.admit(store.direct, r, at(next!, -1))).toBeUndefined();
          expect((await store.rateLimits.nextAdmission(store.direct, r, at(next!, -1))).getTime()).toBe(next!.getTime());
        }
        now = next!;
      }
      // Free, then 1 s after the 2nd hit, 2 s, 4 s, and capped at 4 s.
      expect(waits).toEqual([0, 1000, 2000, 4000, 4000, 4000]);
    });

    it("never admits under a limit of 0", async () => {
      const { store } = ctx;
      const r = rule({ limit: 0 });
      expect(await store.rateLimits.admit(store.direct, r, t0)).toBeUndefined();
      expect((await store.rateLimits.nextAdmission(store.direct, r, t0)).getTime()).toBeGreaterThan(t0.getTime() + 1e12);
    });

    it("admits exactly `limit` of many concurrent hits", async () => {
      const { store } = ctx;
      const r = rule({ limit: 4 });
      const results = await concurrently(store, 10, (tx) => store.rateLimits.admit(tx, r, t0));
      expect(results.filter((x) => x !== undefined)).toHaveLength(4);
    });

    it("gives a refunded hit back", async () => {
      const { store } = ctx;
      const r = rule({ limit: 1 });
      expect(await store.rateLimits.admit(store.direct, r, t0)).toBeDefined();
      expect(await store.rateLimits.admit(store.direct, r, at(t0, 10))).toBeUndefined();
      await store.rateLimits.refund(store.direct, [r.key], t0);
      expect(await store.rateLimits.admit(store.direct, r, at(t0, 20))).toBeDefined();
    });
  });
}
