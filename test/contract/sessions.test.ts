// AuthService.ListSessions and RevokeSession over every transport.
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { auditRows, bearer, login, signUp } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("ListSessions and RevokeSession over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  it("lists the caller's live sessions, newest first, marking the current one", async () => {
    const account = await signUp(auth, "list");
    const second = await login(auth, account.email);
    const third = await login(auth, account.email);
    const ended = await login(auth, account.email);
    await auth.logout({}, bearer(ended.accessToken));
    await signUp(auth, "list-stranger");

    const { sessions, nextPageToken } = await auth.listSessions({}, bearer(second.accessToken));
    expect(nextPageToken).toBe("");
    expect(sessions.map((s) => s.id)).toEqual([third.sessionId, second.sessionId, account.tokens.sessionId]);
    expect(sessions.map((s) => s.current)).toEqual([false, true, false]);
    for (const session of sessions) {
      expect(session).toMatchObject({ ipAddress: "127.0.0.1", amr: ["pwd"] });
      expect(session.expireTime!.seconds).toBeGreaterThan(session.createTime!.seconds);
    }
  });

  it("pages with page_size and page_token", async () => {
    const account = await signUp(auth, "page");
    for (let i = 0; i < 4; i++) await login(auth, account.email);
    const headers = bearer(account.tokens.accessToken);
    const all = (await auth.listSessions({}, headers)).sessions.map((s) => s.id);
    expect(all).toHaveLength(5);

    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await auth.listSessions({ pageSize: 2, pageToken }, headers);
      expect(page.sessions.length).toBeLessThanOrEqual(2);
      seen.push(...page.sessions.map((s) => s.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "" && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(all);
  });

  it("refuses a bad page_token or page_size, changing nothing", async () => {
    const account = await signUp(auth, "page-bad");
    const headers = bearer(account.tokens.accessToken);
    await t.expectUnchanged(async () => {
      await expectError(auth.listSessions({ pageToken: "not-a-token" }, headers), { code: Code.InvalidArgument, fields: ["page_token"] });
      const forged = Buffer.from(JSON.stringify(["yesterday", "x"])).toString("base64url");
      await expectError(auth.listSessions({ pageToken: forged }, headers), { code: Code.InvalidArgument, fields: ["page_token"] });
      await expectError(auth.listSessions({ pageSize: -1 }, headers), { code: Code.InvalidArgument, fields: ["page_size"] });
      await expectError(auth.listSessions({}), { code: Code.Unauthenticated });
    });
  });

  it("RevokeSession ends another of the caller's sessions at once", async () => {
    const account = await signUp(auth, "revoke");
    const other = await login(auth, account.email);
    await auth.revokeSession({ sessionId: other.sessionId.toUpperCase() }, bearer(account.tokens.accessToken));

    expect(await t.verify(other.accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
    await expectError(tokens.refreshToken({ refreshToken: other.refreshToken }), { code: Code.Unauthenticated });
    const listed = await auth.listSessions({}, bearer(account.tokens.accessToken));
    expect(listed.sessions.map((s) => s.id)).toEqual([account.tokens.sessionId]);
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "SESSION_REVOKED", session_id: other.sessionId });
  });

  it("RevokeSession of someone else's, an unknown or an ended session is NOT_FOUND and changes nothing", async () => {
    const account = await signUp(auth, "revoke-owner");
    const stranger = await signUp(auth, "revoke-stranger");
    const ended = await login(auth, account.email);
    await auth.logout({}, bearer(ended.accessToken));
    const headers = bearer(account.tokens.accessToken);
    await t.expectUnchanged(async () => {
      for (const sessionId of [stranger.tokens.sessionId, randomUUID(), ended.sessionId]) {
        await expectError(auth.revokeSession({ sessionId }, headers), { code: Code.NotFound, reason: "SESSION_NOT_FOUND" });
      }
    });
    expect((await t.verify(stranger.tokens.accessToken)).active).toBe(true);
  });

  it("RevokeSession with a malformed id is INVALID_ARGUMENT and changes nothing", async () => {
    const account = await signUp(auth, "revoke-bad");
    await t.expectUnchanged(async () => {
      for (const sessionId of ["", "not-a-uuid", `${account.tokens.sessionId}x`]) {
        await expectError(auth.revokeSession({ sessionId }, bearer(account.tokens.accessToken)), { code: Code.InvalidArgument, fields: ["session_id"] });
      }
      await expectError(auth.revokeSession({ sessionId: account.tokens.sessionId }), { code: Code.Unauthenticated });
    });
  });
});
