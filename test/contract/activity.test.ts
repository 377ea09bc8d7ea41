// AuthService.ListActivity over every transport: the caller's own audit trail, newest first.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AuditEventType } from "../../gen/identity/v1/auth_service_pb.js";
import { bearer, login, PASSWORD, signUp } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("ListActivity over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  it("records sign-up, logins and failures, logout, password change and refresh-token reuse", async () => {
    const account = await signUp(auth, "activity");
    await signUp(auth, "activity-stranger");
    await expectError(auth.login({ identifier: account.email, password: "not the password" }), { code: Code.Unauthenticated });
    const loggedOut = await login(auth, account.email);
    await auth.logout({}, bearer(loggedOut.accessToken));
    const ended = await login(auth, account.email);
    await auth.changePassword({ currentPassword: PASSWORD, newPassword: "another fine passphrase" }, bearer(account.tokens.accessToken));
    await tokens.refreshToken({ refreshToken: account.tokens.refreshToken });
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_REUSED" });
    const current = await login(auth, account.email, "another fine passphrase");

    const { events, nextPageToken } = await auth.listActivity({}, bearer(current.accessToken));
    expect(nextPageToken).toBe("");
    expect(events.map((e) => [AuditEventType[e.type], e.sessionId])).toEqual([
      ["LOGIN_SUCCEEDED", current.sessionId],
      ["REFRESH_TOKEN_REUSED", account.tokens.sessionId],
      ["PASSWORD_CHANGED", account.tokens.sessionId],
      ["LOGIN_SUCCEEDED", ended.sessionId],
      ["LOGOUT", loggedOut.sessionId],
      ["LOGIN_SUCCEEDED", loggedOut.sessionId],
      ["LOGIN_FAILED", ""],
      ["SIGN_UP", account.tokens.sessionId],
    ]);
    for (const event of events) {
      expect(event.ipAddress).toBe("127.0.0.1");
      expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(events[0]!.details).toEqual({ method: "pwd" });
    expect(events[6]!.details).toMatchObject({ method: "pwd", cause: "wrong_password" });
  });

  it("pages through every event, even several within one millisecond", async () => {
    const account = await signUp(auth, "activity-page");
    for (const micros of ["123456", "123457", "123458"]) {
      await t.db.query(
        `INSERT INTO audit_events (user_id, type, created_at) VALUES ($1, 'LOGIN_FAILED', $2::timestamptz)`,
        [account.userId, `2020-01-01T00:00:00.${micros}Z`],
      );
    }
    const headers = bearer(account.tokens.accessToken);
    const all = (await auth.listActivity({}, headers)).events.map((e) => e.id);
    expect(all).toHaveLength(4);

    const seen: string[] = [];
    let pageToken = "";
    for (let pages = 0; pages < 10; pages++) {
      const page = await auth.listActivity({ pageSize: 1, pageToken }, headers);
      seen.push(...page.events.map((e) => e.id));
      pageToken = page.nextPageToken;
      if (pageToken === "") break;
    }
    expect(seen).toEqual(all);
  });

  it("refuses a bad page_token and unauthenticated callers, changing nothing", async () => {
    const account = await signUp(auth, "activity-bad");
    await t.expectUnchanged(async () => {
      await expectError(auth.listActivity({ pageToken: "%%%" }, bearer(account.tokens.accessToken)), { code: Code.InvalidArgument, fields: ["page_token"] });
      await expectError(auth.listActivity({ pageSize: -5 }, bearer(account.tokens.accessToken)), { code: Code.InvalidArgument, fields: ["page_size"] });
      await expectError(auth.listActivity({}), { code: Code.Unauthenticated });
    });
  });
});
