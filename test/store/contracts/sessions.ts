// What any SessionStore must guarantee, above all for refresh-token rotation.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { at, concurrently, minutes, type StoreContext } from "../support.js";

export function sessionStoreContract(ctx: StoreContext): void {
  let serial = 0;
  async function session(userId?: string) {
    const { store } = ctx;
    const owner = userId ?? (await ctx.user()).id;
    // Apart by a few milliseconds, so that "newest first" has one answer.
    const now = new Date(Date.now() + 5 * serial++);
    const sessionId = await store.sessions.insert(store.direct, { userId: owner, amr: ["pwd"], userAgent: "ua", ipAddress: "127.0.0.1", now, absoluteExpiresAt: at(now, minutes(60)) });
    const tokenHash = randomBytes(32);
    await store.sessions.insertRefreshToken(store.direct, sessionId, tokenHash, at(now, minutes(10)));
    return { userId: owner, sessionId, tokenHash };
  }

  /** A refresh of `tokenHash` at `now`, its next token asked for 10 minutes. */
  const rotate = (tokenHash: Buffer, now: Date) => ctx.store.sessions.rotateRefreshToken(ctx.store.direct, tokenHash, randomBytes(32), now, at(now, minutes(10)));

  describe("SessionStore", () => {
    it("does not spend the token of a revoked session, an expired token, or one of an account no longer live", async () => {
      const { store } = ctx;
      const revoked = await session();
      expect(await store.sessions.revoke(store.direct, { kind: "one", sessionId: revoked.sessionId, userId: revoked.userId }, "logout", new Date())).toEqual([revoked.sessionId]);
      expect((await rotate(revoked.tokenHash, new Date())).kind).toBe("unusable");
      // Refused without being spent, so a second try is not "reuse".
      expect((await store.sessions.findRefreshToken(store.direct, revoked.tokenHash, new Date()))?.usedAt).toBeNull();

      const expired = await session();
      expect((await rotate(expired.tokenHash, at(new Date(), minutes(11)))).kind).toBe("unusable");

      const deleted = await session();
      await store.users.markDeleted(store.direct, deleted.userId, new Date(), "admin");
      expect((await rotate(deleted.tokenHash, new Date())).kind).toBe("unusable");
    });

    it("rotates in one statement: of concurrent rotations with one token exactly one spends it and stores the next", async () => {
      const { store } = ctx;
      const user = await ctx.user({ username: `rot${Date.now()}` });
      const { sessionId, tokenHash } = await session(user.id);
      const now = new Date();
      const nexts = Array.from({ length: 8 }, () => randomBytes(32));
      const outcomes = await concurrently(store, 8, (tx, i) => store.sessions.rotateRefreshToken(tx, tokenHash, nexts[i]!, now, at(now, minutes(10))));
      const rotated = outcomes.filter((o) => o.kind === "rotated");
      expect(rotated).toHaveLength(1);
      expect(outcomes.filter((o) => o.kind === "unusable")).toHaveLength(7);
      expect(rotated[0]).toMatchObject({ kind: "rotated", sessionId, session: { userId: user.id, amr: ["pwd"], role: "user", username: user.username } });
      // Exactly one next token was stored, and it is the winner's; it rotates in turn.
      const [{ n }] = await ctx.sql<{ n: number }>(`SELECT count(*)::int AS n FROM refresh_tokens WHERE session_id = $1 AND used_at IS NULL`, [sessionId]) as [{ n: number }];
      expect(n).toBe(1);
      // The spent token does not rotate again; it is known, spent, of a live session.
      expect((await rotate(tokenHash, new Date())).kind).toBe("unusable");
      const known = await store.sessions.findRefreshToken(store.direct, tokenHash, new Date());
      expect(known).toMatchObject({ sessionId, live: true });
      expect(known?.usedAt).toBeInstanceOf(Date);
      const winner = nexts[outcomes.indexOf(rotated[0]!)]!;
      expect((await rotate(winner, new Date())).kind).toBe("rotated");
    });

    it("caps the next token at the session's end", async () => {
      const { store } = ctx;
      // The session ends in 60 minutes (session()): a next token asked for 2 hours expires with it.
      const capped = await session();
      const outcome = await store.sessions.rotateRefreshToken(store.direct, capped.tokenHash, randomBytes(32), new Date(), at(new Date(), minutes(120)));
      expect(outcome.kind).toBe("rotated");
      if (outcome.kind === "rotated") expect(outcome.nextExpiresAt.getTime()).toBe(outcome.session.absoluteExpiresAt.getTime());
    });

    it("rotates a live session's token and returns its owner's claims", async () => {
      const user = await ctx.user({ username: `claims${Date.now()}` });
      const { tokenHash } = await session(user.id);
      const touched = await rotate(tokenHash, new Date());
      expect(touched).toMatchObject({ kind: "rotated", session: { userId: user.id, amr: ["pwd"], role: "user", username: user.username } });
    });

    it("revokes a reused family only when the token was spent before the grace window", async () => {
      const { store } = ctx;
      const { sessionId, tokenHash } = await session();
      const spentAt = new Date();
      await rotate(tokenHash, spentAt);
      const inside = await store.sessions.revoke(store.direct, { kind: "reused", sessionId, tokenHash, spentBefore: at(spentAt, -1) }, "refresh_token_reuse", new Date());
      expect(inside).toEqual([]);
      const outside = await store.sessions.revoke(store.direct, { kind: "reused", sessionId, tokenHash, spentBefore: spentAt }, "refresh_token_reuse", new Date());
      expect(outside).toEqual([sessionId]);
      const [row] = await ctx.sql<{ revoke_reason: string }>(`SELECT revoke_reason FROM sessions WHERE id = $1`, [sessionId]);
      expect(row?.revoke_reason).toBe("refresh_token_reuse");
    });

    it("revokes all of an account's sessions but one, each once, and only the owner's", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const [a, b, c] = [await session(user.id), await session(user.id), await session(user.id)];
      const stranger = await session();
      expect(await store.sessions.revoke(store.direct, { kind: "one", sessionId: stranger.sessionId, userId: user.id }, "revoked", new Date())).toEqual([]);
      const ended = await store.sessions.revoke(store.direct, { kind: "user", userId: user.id, exceptSessionId: a.sessionId }, "password_changed", new Date());
      expect(ended.sort()).toEqual([b.sessionId, c.sessionId].sort());
      expect(await store.sessions.revoke(store.direct, { kind: "user", userId: user.id }, "account_deleted", new Date())).toEqual([a.sessionId]);
    });

    it("lists live sessions with a usable token, newest first, in pages", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const made = [];
      for (let i = 0; i < 3; i++) made.push(await session(user.id));
      const spent = await session(user.id);
      // Spent (as a refresh spends it) and not replaced: the session has no usable token.
      await ctx.sql(`UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, [spent.tokenHash]);
      const first = await store.sessions.listActive(store.direct, user.id, new Date(), 2);
      expect(first.map((s) => s.id)).toEqual([made[2]!.sessionId, made[1]!.sessionId]);
      const last = first[1]!;
      const rest = await store.sessions.listActive(store.direct, user.id, new Date(), 2, { time: last.createdAt, id: last.id });
      expect(rest.map((s) => s.id)).toEqual([made[0]!.sessionId]);
      expect(await store.sessions.findByRefreshToken(store.direct, spent.tokenHash)).toEqual({ sessionId: spent.sessionId, userId: user.id });
    });
  });
}
