// What the MFA stores must guarantee: a TOTP step, a backup code and a challenge are each used once.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { at, concurrently, minutes, type StoreContext } from "../support.js";

export function mfaStoreContract(ctx: StoreContext): void {
  describe("TotpStore", () => {
    it("accepts a time step once, and only a newer one after it: of concurrent uses exactly one", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      await store.totp.upsertPending(store.direct, user.id, randomBytes(16));
      expect(await store.totp.find(store.direct, user.id)).toMatchObject({ confirmedAt: null });
      const results = await concurrently(store, 6, (tx) => store.totp.advanceStep(tx, user.id, 1000));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.totp.advanceStep(store.direct, user.id, 999)).toBe(false);
      expect(await store.totp.advanceStep(store.direct, user.id, 1001)).toBe(true);
      // Setting up again starts over.
      await store.totp.upsertPending(store.direct, user.id, randomBytes(16));
      expect(await store.totp.advanceStep(store.direct, user.id, 5)).toBe(true);
      await store.totp.delete(store.direct, user.id);
      expect(await store.totp.find(store.direct, user.id)).toBeUndefined();
    });
  });

  describe("BackupCodeStore", () => {
    it("spends a code once: of concurrent uses exactly one; replacing the set ends the old codes", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const hashes = [randomBytes(32), randomBytes(32), randomBytes(32)];
      await store.backupCodes.replace(store.direct, user.id, hashes);
      const results = await concurrently(store, 6, (tx) => store.backupCodes.use(tx, user.id, [hashes[0]!], new Date()));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.backupCodes.countUnused(store.direct, user.id)).toBe(2);
      await store.backupCodes.replace(store.direct, user.id, [randomBytes(32)]);
      expect(await store.backupCodes.use(store.direct, user.id, [hashes[1]!], new Date())).toBe(false);
      expect(await store.backupCodes.countUnused(store.direct, user.id)).toBe(1);
    });
  });

  describe("MfaChallengeStore", () => {
    it("counts attempts up to the maximum, and consumes a challenge once", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const tokenHash = randomBytes(32);
      const now = new Date();
      await store.mfaChallenges.insert(store.direct, { userId: user.id, tokenHash, firstFactor: ["pwd"], expiresAt: at(now, minutes(5)) });
      expect(await store.mfaChallenges.findLiveOwner(store.direct, tokenHash, now, 3)).toBe(user.id);
      const attempts = await concurrently(store, 5, (tx) => store.mfaChallenges.countAttempt(tx, tokenHash, user.id, now, 3));
      const counted = attempts.filter((a) => a !== undefined);
      expect(counted).toHaveLength(3);
      expect(counted[0]!.firstFactor).toEqual(["pwd"]);
      expect(await store.mfaChallenges.findLiveOwner(store.direct, tokenHash, now, 3)).toBeUndefined();
      const results = await concurrently(store, 4, (tx) => store.mfaChallenges.consume(tx, counted[0]!.id, now));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it("does not count an attempt on an expired challenge or another account's, and deletes the pending ones", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const other = await ctx.user();
      const tokenHash = randomBytes(32);
      const now = new Date();
      await store.mfaChallenges.insert(store.direct, { userId: user.id, tokenHash, firstFactor: ["otp", "email"], expiresAt: at(now, minutes(5)) });
      expect(await store.mfaChallenges.countAttempt(store.direct, tokenHash, other.id, now, 5)).toBeUndefined();
      expect(await store.mfaChallenges.countAttempt(store.direct, tokenHash, user.id, at(now, minutes(6)), 5)).toBeUndefined();
      expect(await store.mfaChallenges.deletePending(store.direct, user.id)).toBe(1);
      expect(await store.mfaChallenges.findLiveOwner(store.direct, tokenHash, now, 5)).toBeUndefined();
    });
  });
}
