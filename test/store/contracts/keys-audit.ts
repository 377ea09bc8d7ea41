// What the SigningKeyStore and AuditEventStore must guarantee.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { at, minutes, type StoreContext } from "../support.js";

export function signingKeyStoreContract(ctx: StoreContext): void {
  describe("SigningKeyStore", () => {
    it("publishes keys until they expire, newest first, and retires the current one on rotation", async () => {
      const { store } = ctx;
      const now = new Date();
      const key = (kid: string, activatesAt: Date) => ({ kid, alg: "EdDSA", publicJwk: { kty: "OKP", crv: "Ed25519", x: kid }, privateKeySealed: Buffer.from(kid), activatesAt, retiresAt: null, expiresAt: null });
      const before = await store.signingKeys.count(store.direct);
      const first = `k-${randomUUID()}`;
      const second = `k-${randomUUID()}`;
      await store.transaction(async (tx) => {
        await store.signingKeys.lock(tx);
        await store.signingKeys.insert(tx, key(first, now));
      });
      await store.transaction(async (tx) => {
        await store.signingKeys.lock(tx);
        await store.signingKeys.retireCurrent(tx, at(now, minutes(1)), at(now, minutes(10)));
        await store.signingKeys.insert(tx, key(second, at(now, minutes(1))));
      });
      expect(await store.signingKeys.count(store.direct)).toBe(before + 2);
      expect((await store.signingKeys.newestActivation(store.direct))?.getTime()).toBe(at(now, minutes(1)).getTime());
      const published = await store.signingKeys.listPublished(store.direct, at(now, minutes(5)));
      expect(published.slice(0, 2).map((k) => k.kid)).toEqual([second, first]);
      expect(published.find((k) => k.kid === first)?.retiresAt?.getTime()).toBe(at(now, minutes(1)).getTime());
      const later = await store.signingKeys.listPublished(store.direct, at(now, minutes(11)));
      expect(later.map((k) => k.kid)).not.toContain(first);
      expect(later.map((k) => k.kid)).toContain(second);
    });
  });
}

export function auditEventStoreContract(ctx: StoreContext): void {
  describe("AuditEventStore", () => {
    it("lists an account's events newest first, in pages after a cursor event", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const t0 = new Date();
      for (let i = 0; i < 3; i++) {
        await store.audit.insert(store.direct, { userId: user.id, type: `E${i}`, ipAddress: "127.0.0.1", userAgent: "ua", sessionId: null, details: { i: String(i) }, createdAt: at(t0, i) });
      }
      await store.audit.insert(store.direct, { userId: null, type: "LOGIN_FAILED", ipAddress: "", userAgent: "", sessionId: null, details: {}, createdAt: t0 });
      const page = await store.audit.list(store.direct, user.id, 2);
      expect(page.map((e) => e.type)).toEqual(["E2", "E1"]);
      expect(page[0]!.details).toEqual({ i: "2" });
      const rest = await store.audit.list(store.direct, user.id, 2, page[1]!.id);
      expect(rest.map((e) => e.type)).toEqual(["E0"]);
    });
  });
}
