// AuthService.Login and WhoAmI over every transport: each kind of identifier, one answer for
// a wrong password and an unknown account, and bearer-token authentication.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { auditRows, bearer, login, PASSWORD, signUp, uniqueEmail, uniquePhone, uniqueUsername } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("Login and WhoAmI over %s", (name) => {
  const { auth } = t.clients(name);

  it("logs in by email, in any case, and starts a new session", async () => {
    const account = await signUp(auth, "login-email");
    const response = await auth.login({ identifier: ` ${account.email.toUpperCase()} `, password: PASSWORD });
    expect(response.result.case).toBe("tokens");
    const tokens = response.result.value as NonNullable<typeof account.tokens>;
    expect(response.user?.id).toBe(account.userId);
    expect(tokens.sessionId).not.toBe(account.tokens.sessionId);
    expect(await t.verify(tokens.accessToken)).toMatchObject({ active: true, userId: account.userId, sessionId: tokens.sessionId });

    const sessions = await t.db.query(`SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL`, [account.userId]);
    expect(sessions).toHaveLength(2);
    const events = await auditRows(t.db, account.userId);
    expect(events.map((e) => e.type)).toEqual(["SIGN_UP", "LOGIN_SUCCEEDED"]);
    expect(events[1]).toMatchObject({ session_id: tokens.sessionId, details: { method: "pwd" } });
  });

  it("logs in by username and by phone, however written", async () => {
    const username = uniqueUsername("login");
    const phone = uniquePhone();
    const account = await signUp(auth, "login-ids", { username, phone });
    const byUsername = await login(auth, username.toUpperCase());
    const byPhone = await login(auth, `+1 (415) 555-${phone.slice(-4)}`);
    for (const tokens of [byUsername, byPhone]) {
      expect((await t.verify(tokens.accessToken)).userId).toBe(account.userId);
    }
  });

  /** LOGIN_FAILED rows on no account, oldest first. */
  async function anonymousLoginFailures(): Promise<Array<Record<string, string>>> {
    const rows = (await t.db.query(`SELECT details FROM audit_events WHERE user_id IS NULL AND type = 'LOGIN_FAILED' ORDER BY created_at, id`)) as Array<{
      details: Record<string, string>;
    }>;
    return rows.map((r) => r.details);
  }

  it("answers a wrong password and an unknown account alike", async () => {
    const account = await signUp(auth, "login-wrong");
    const wrong = await t.expectUnchanged(
      () => expectError(auth.login({ identifier: account.email, password: "not the password" }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" }),
      ["audit_events", "rate_limits"], // the failure is audited and counted in the login limits
    );
    const anonymousBefore = await anonymousLoginFailures();
    const unknown = await t.expectUnchanged(
      () => expectError(auth.login({ identifier: uniqueEmail("nobody"), password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" }),
      ["audit_events", "rate_limits"],
    );
    expect(unknown.rawMessage).toBe(wrong.rawMessage);
    expect(unknown.findDetails(ErrorInfoSchema)).toEqual(wrong.findDetails(ErrorInfoSchema));
    // The failure is on the account's audit trail; nothing else was written.
    expect((await auditRows(t.db, account.userId)).map((e) => e.type)).toEqual(["SIGN_UP", "LOGIN_FAILED"]);
    // The unknown identifier did the same work before answering: the same audit write, on no
    // account and without the identifier (issue 10, item 13: the write was a timing oracle).
    expect(await anonymousLoginFailures()).toEqual([...anonymousBefore, { method: "pwd", cause: "unknown_identifier" }]);
  });

  it("refuses empty fields as INVALID_ARGUMENT and stores nothing", async () => {
    await t.expectUnchanged(async () => {
      await expectError(auth.login({ identifier: "  ", password: "" }), { code: Code.InvalidArgument, fields: ["identifier", "password"] });
      await expectError(auth.login({ identifier: uniqueEmail("empty"), password: "" }), { code: Code.InvalidArgument, fields: ["password"] });
    });
  });

  it("WhoAmI returns the caller's account and session", async () => {
    const account = await signUp(auth, "whoami", { displayName: "Who Am I" });
    const me = await auth.whoAmI({}, bearer(account.tokens.accessToken));
    expect(me.user).toMatchObject({ id: account.userId, email: account.email, displayName: "Who Am I", hasPassword: true });
    expect(me.sessionId).toBe(account.tokens.sessionId);
    expect(me.amr).toEqual(["pwd"]);
  });

  it("WhoAmI without a token, or with a bad one, is UNAUTHENTICATED", async () => {
    const account = await signUp(auth, "whoami-bad");
    await t.expectUnchanged(async () => {
      await expectError(auth.whoAmI({}), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
      await expectError(auth.whoAmI({}, bearer("garbage")), { code: Code.Unauthenticated, reason: "ACCESS_TOKEN_INVALID" });
      await expectError(auth.whoAmI({}, bearer(account.tokens.refreshToken)), { code: Code.Unauthenticated, reason: "ACCESS_TOKEN_INVALID" });
      const [header, payload] = account.tokens.accessToken.split(".");
      await expectError(auth.whoAmI({}, bearer(`${header}.${payload}.AAAA`)), { code: Code.Unauthenticated, reason: "ACCESS_TOKEN_INVALID" });
      await expectError(auth.whoAmI({}, { headers: { authorization: `Basic ${account.tokens.accessToken}` } }), {
        code: Code.Unauthenticated,
        reason: "AUTHENTICATION_REQUIRED",
      });
    });
  });
});
