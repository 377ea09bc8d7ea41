// What any UserStore must guarantee.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { UniqueViolationError } from "../../../src/store/index.js";
import { concurrently, type StoreContext } from "../support.js";

export function userStoreContract(ctx: StoreContext): void {
  describe("UserStore", () => {
    it("creates an account and refuses a second one with the same email, username or phone (UniqueViolationError)", async () => {
      const email = `dup-${randomUUID()}@example.com`;
      const username = `dup${Date.now()}`;
      await ctx.user({ email, username });
      await expect(ctx.user({ email })).rejects.toBeInstanceOf(UniqueViolationError);
      await expect(ctx.user({ email: null, username: username.toUpperCase() })).rejects.toBeInstanceOf(UniqueViolationError);
    });

    it("finds a not-deleted account by identifier: email exactly, username in any case, phone exactly", async () => {
      const { store } = ctx;
      const phone = `+1415555${String(Math.floor(Math.random() * 10_000)).padStart(4, "0")}`;
      const user = await ctx.user({ username: `findme${Date.now()}`, phone });
      expect((await store.users.findByIdentifier(store.direct, "email", user.email!))?.id).toBe(user.id);
      expect((await store.users.findByIdentifier(store.direct, "email", user.email!.toUpperCase()))).toBeNull();
      expect((await store.users.findByIdentifier(store.direct, "username", user.username!.toUpperCase()))?.id).toBe(user.id);
      expect((await store.users.findByIdentifier(store.direct, "phone", phone))?.id).toBe(user.id);
    });

    it("never deletes the last live holder of the highest role (LAST_OWNER)", async () => {
      const { store } = ctx;
      const highest = `owner_${Date.now()}`; // a role no other test's account holds
      const first = await ctx.user();
      const last = await ctx.user();
      for (const u of [first, last]) await ctx.sql(`UPDATE users SET role = $2 WHERE id = $1`, [u.id, highest]);
      expect(await store.users.markDeleted(store.direct, first.id, new Date(), highest)).toBe(true);
      expect(await store.users.markDeleted(store.direct, last.id, new Date(), highest)).toBe(false);
      expect((await store.users.findLive(store.direct, last.id))?.id).toBe(last.id);
    });

    it("applies the live-user rule: a deleted or disabled account is not live", async () => {
      const { store } = ctx;
      const deleted = await ctx.user();
      const disabled = await ctx.user();
      const active = await ctx.user();
      await store.users.markDeleted(store.direct, deleted.id, new Date(), "admin");
      await ctx.sql(`UPDATE users SET status = 'disabled' WHERE id = $1`, [disabled.id]);
      expect(await store.users.findLive(store.direct, deleted.id)).toBeNull();
      expect(await store.users.findLive(store.direct, disabled.id)).toBeNull();
      expect((await store.users.findLive(store.direct, active.id))?.id).toBe(active.id);
      // By identifier a disabled account is still found (login tells it apart), a deleted one is not.
      expect(await store.users.findByIdentifier(store.direct, "email", deleted.email!)).toBeNull();
      const found = await store.users.findByIdentifier(store.direct, "email", disabled.email!);
      expect(found?.id).toBe(disabled.id);
      expect(store.users.isLive(found!)).toBe(false);
      expect(store.users.isLive(active)).toBe(true);
    });

    it("changes a password only against the hash it was checked with: of concurrent changes exactly one wins", async () => {
      const { store } = ctx;
      const user = await ctx.user({ passwordHash: "old" });
      expect(await store.users.changePassword(store.direct, user.id, "x", "not-the-hash", new Date())).toBe(false);
      expect((await store.users.get(store.direct, user.id)).passwordHash).toBe("old");
      const results = await concurrently(store, 6, (tx, i) => store.users.changePassword(tx, user.id, `new-${i}`, "old", new Date()));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await store.users.get(store.direct, user.id)).passwordHash).toBe(`new-${results.indexOf(true)}`);
    });

    it("creates the account of a contact once; a second creation finds it taken", async () => {
      const { store } = ctx;
      const email = `contact-${randomUUID()}@example.com`;
      const now = new Date();
      const results = await concurrently(store, 4, (tx) => store.users.insertForContact(tx, "email", email, now));
      const created = results.filter((r) => r !== null);
      expect(created).toHaveLength(1);
      expect(created[0]!.emailVerifiedAt?.getTime()).toBe(now.getTime());
      const [row] = await ctx.sql<{ n: number }>(`SELECT count(*)::int AS n FROM users WHERE email = $1`, [email]);
      expect(row?.n).toBe(1);
    });

    it("verifies only the account's own contact, and only while it is live", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const now = new Date();
      expect(await store.users.markContactVerified(store.direct, user.id, "email", "someone-else@example.com", now)).toBe(false);
      expect(await store.users.markContactVerified(store.direct, user.id, "email", user.email!, now)).toBe(true);
      expect((await store.users.get(store.direct, user.id)).emailVerifiedAt?.getTime()).toBe(now.getTime());
      await store.users.markDeleted(store.direct, user.id, now, "admin");
      expect(await store.users.markContactVerified(store.direct, user.id, "email", user.email!, now)).toBe(false);
    });

    it("claims an unverified contact once, discarding the password, second factor and other contact with it", async () => {
      const { store } = ctx;
      const user = await ctx.user({ phone: "+14155550142", passwordHash: "squatter" });
      await ctx.sql(`INSERT INTO totp_credentials (user_id, secret_sealed, confirmed_at) VALUES ($1, '\\x00', now())`, [user.id]);
      await ctx.sql(`INSERT INTO backup_codes (user_id, code_hash) VALUES ($1, '\\x01'), ($1, '\\x02')`, [user.id]);
      const now = new Date();
      const claims = await concurrently(store, 3, (tx) => store.users.claimUnverifiedContact(tx, user.id, "email", now));
      const done = claims.filter((c) => c !== null);
      expect(done).toEqual([{ hadPassword: true, hadOtherContact: true, totp: 1, pendingTotp: 0, backupCodes: 2 }]);
      const after = await store.users.get(store.direct, user.id);
      expect(after).toMatchObject({ passwordHash: null, phone: null, mfaEnabledAt: null });
      expect(after.tokensValidAfter?.getTime()).toBe(now.getTime());
      expect(await store.users.claimUnverifiedContact(store.direct, user.id, "email", now)).toBeNull();
    });
  });
}
