// What the revocation feed must deliver: recent revocations by query, new ones as they commit.
import { describe, expect, it } from "vitest";
import type { RevocationEvent } from "../../../src/store/index.js";
import { at, minutes, type StoreContext } from "../support.js";

export function revocationFeedContract(ctx: StoreContext): void {
  describe("RevocationFeed", () => {
    it("reads recent revocations, and notifies listeners of a revoked session and of invalidated tokens on commit", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const now = new Date();
      const sessionId = await store.sessions.insert(store.direct, { userId: user.id, amr: ["pwd"], userAgent: "", ipAddress: "", now, absoluteExpiresAt: at(now, minutes(60)) });
      const events: RevocationEvent[] = [];
      let lost = 0;
      const listener = await store.revocationFeed.listen({ onEvent: (e) => events.push(e), onMalformed: () => {}, onLost: () => lost++ });
      try {
        await store.transaction(async (tx) => {
          await store.sessions.revoke(tx, { kind: "one", sessionId, userId: user.id }, "logout", now);
          await store.users.markDeleted(tx, user.id, now, "admin");
          // Nothing before the commit.
          await new Promise((resolve) => setTimeout(resolve, 100));
          expect(events).toEqual([]);
        });
        await expect.poll(() => events.length, { timeout: 5_000 }).toBe(2);
        expect(events).toContainEqual({ kind: "session", sessionId, at: now });
        expect(events).toContainEqual({ kind: "user", userId: user.id, validAfter: now, status: "deleted" });
      } finally {
        await listener.close();
      }
      expect(lost).toBe(0);
      const recent = await store.revocationFeed.recent(store.direct, at(now, -1));
      expect(recent.sessions).toContainEqual({ id: sessionId, revokedAt: now });
      expect(recent.users).toContainEqual({ id: user.id, validAfter: now, status: "deleted" });
      expect((await store.revocationFeed.recent(store.direct, now)).sessions.map((s) => s.id)).not.toContain(sessionId);
    });
  });
}
