// What any OtpCodeStore must guarantee: a code is spent once, wrong attempts are counted and capped.
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { OtpPurpose } from "../../../src/store/index.js";
import { at, concurrently, minutes, type StoreContext } from "../support.js";

const MAX = 5;

export function otpCodeStoreContract(ctx: StoreContext): void {
  async function code(purpose: OtpPurpose = "login", destination = `otp-${randomUUID()}@example.com`, userId: string | null = null) {
    const key = { channel: "email" as const, destination, purpose };
    const codeHash = randomBytes(32);
    const now = new Date();
    await ctx.store.otpCodes.upsert(ctx.store.direct, key, { userId, codeHash, createdAt: now, expiresAt: at(now, minutes(10)) });
    return { key, codeHash };
  }

  describe("OtpCodeStore", () => {
    it("spends the right code once: of concurrent consumes exactly one wins", async () => {
      const { store } = ctx;
      const { key, codeHash } = await code();
      const results = await concurrently(store, 8, (tx) => store.otpCodes.consume(tx, key, [codeHash], new Date(), MAX));
      expect(results.filter((r) => r?.ok)).toHaveLength(1);
      expect(results.filter((r) => r !== undefined && !r.ok)).toHaveLength(0);
      expect(await store.otpCodes.consume(store.direct, key, [codeHash], new Date(), MAX)).toBeUndefined();
    });

    it("counts a wrong code as an attempt and stops checking after the last one", async () => {
      const { store } = ctx;
      const { key, codeHash } = await code();
      const wrong = randomBytes(32);
      for (let i = 1; i <= MAX; i++) expect(await store.otpCodes.consume(store.direct, key, [wrong], new Date(), MAX)).toMatchObject({ ok: false, attempts: i });
      // Exhausted: even the right code is not checked any more.
      expect(await store.otpCodes.consume(store.direct, key, [codeHash], new Date(), MAX)).toBeUndefined();
      expect(await store.otpCodes.state(store.direct, key, new Date(), MAX)).toEqual({ expired: false, exhausted: true });
    });

    it("does not spend an expired code, and says it expired", async () => {
      const { store } = ctx;
      const { key, codeHash } = await code();
      const later = at(new Date(), minutes(11));
      expect(await store.otpCodes.consume(store.direct, key, [codeHash], later, MAX)).toBeUndefined();
      expect(await store.otpCodes.state(store.direct, key, later, MAX)).toEqual({ expired: true, exhausted: false });
    });

    it("replaces a code: the earlier one stops working, attempts start again", async () => {
      const { store } = ctx;
      const first = await code("verify_contact");
      await store.otpCodes.consume(store.direct, first.key, [randomBytes(32)], new Date(), MAX);
      const second = await code("verify_contact", first.key.destination);
      expect(await store.otpCodes.consume(store.direct, first.key, [first.codeHash], new Date(), MAX)).toMatchObject({ ok: false, attempts: 1 });
      expect(await store.otpCodes.consume(store.direct, second.key, [second.codeHash], new Date(), MAX)).toMatchObject({ ok: true });
    });

    it("deletes an account's outstanding reset codes, and nobody else's", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const mine = await code("password_reset", user.email!);
      const other = await code("password_reset");
      const login = await code("login", user.email!);
      expect(await store.otpCodes.deletePendingResetCodes(store.direct, user.id)).toBe(1);
      expect(await store.otpCodes.state(store.direct, mine.key, new Date(), MAX)).toBeUndefined();
      expect(await store.otpCodes.state(store.direct, other.key, new Date(), MAX)).toBeDefined();
      expect(await store.otpCodes.state(store.direct, login.key, new Date(), MAX)).toBeDefined();
    });
  });
}
