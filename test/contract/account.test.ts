// AuthService.ChangePassword and DeleteAccount over every transport.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { auditRows, bearer, login, PASSWORD, sessionRows, signUp, violationReasons } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const NEW_PASSWORD = "a brand new passphrase";

const t = setupService();

describe.each(transportNames)("ChangePassword and DeleteAccount over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  it("ChangePassword with a wrong current password is PERMISSION_DENIED and changes nothing else", async () => {
    const account = await signUp(auth, "change-wrong");
    await t.expectUnchanged(
      () =>
        expectError(auth.changePassword({ currentPassword: "not the password", newPassword: NEW_PASSWORD }, bearer(account.tokens.accessToken)), {
          code: Code.PermissionDenied,
          reason: "WRONG_PASSWORD",
        }),
      ["audit_events", "rate_limits"], // audited and counted like a failed login
    );
    expect((await auditRows(t.db, account.userId)).map((e) => e.type)).toEqual(["SIGN_UP", "LOGIN_FAILED"]);
  });

  it("ChangePassword refuses invalid input and unauthenticated callers, changing nothing", async () => {
    const account = await signUp(auth, "change-invalid");
    await t.expectUnchanged(async () => {
      const error = await expectError(auth.changePassword({ currentPassword: "", newPassword: "password" }, bearer(account.tokens.accessToken)), {
        code: Code.InvalidArgument,
        fields: ["current_password", "new_password"],
      });
      expect(violationReasons(error)).toEqual({ current_password: "REQUIRED", new_password: "PASSWORD_TOO_COMMON" });
      await expectError(auth.changePassword({ currentPassword: PASSWORD, newPassword: "😀".repeat(7) }, bearer(account.tokens.accessToken)), {
        code: Code.InvalidArgument,
        fields: ["new_password"],
      });
      await expectError(auth.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }), { code: Code.Unauthenticated });
    });
  });

  it("ChangePassword ends the other sessions, keeps the caller's, and swaps the password", async () => {
    const account = await signUp(auth, "change-ok");
    const others = [await login(auth, account.email), await login(auth, account.email)];
    const response = await auth.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, bearer(account.tokens.accessToken));
    expect(response.endedSessionCount).toBe(2);

    for (const pair of others) {
      expect(await t.verify(pair.accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
      await expectError(tokens.refreshToken({ refreshToken: pair.refreshToken }), { code: Code.Unauthenticated });
    }
    expect((await auth.whoAmI({}, bearer(account.tokens.accessToken))).sessionId).toBe(account.tokens.sessionId);
    const refreshed = await tokens.refreshToken({ refreshToken: account.tokens.refreshToken });
    expect(refreshed.tokens?.sessionId).toBe(account.tokens.sessionId);

    await login(auth, account.email, NEW_PASSWORD);
    await expectError(auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });

    expect((await sessionRows(t.db, account.userId)).slice(0, 3).map((r) => r.revoke_reason)).toEqual([null, "password_changed", "password_changed"]);
    const changed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "PASSWORD_CHANGED");
    expect(changed).toEqual([{ type: "PASSWORD_CHANGED", session_id: account.tokens.sessionId, details: { ended_sessions: "2" } }]);
  });

  it("DeleteAccount refuses a wrong or missing password, changing nothing", async () => {
    const account = await signUp(auth, "delete-wrong");
    await t.expectUnchanged(
      async () => {
        await expectError(auth.deleteAccount({ password: "not the password" }, bearer(account.tokens.accessToken)), {
          code: Code.PermissionDenied,
          reason: "WRONG_PASSWORD",
        });
        await expectError(auth.deleteAccount({ password: "" }, bearer(account.tokens.accessToken)), { code: Code.InvalidArgument, fields: ["password"] });
        await expectError(auth.deleteAccount({ password: PASSWORD }), { code: Code.Unauthenticated });
      },
      ["audit_events", "rate_limits"], // audited and counted like a failed login
    );
    expect((await auth.whoAmI({}, bearer(account.tokens.accessToken))).user?.id).toBe(account.userId);
    // The wrong password is audited like a failed login (it counts in the same limits).
    const failed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGIN_FAILED");
    expect(failed.map((e) => [e.session_id, e.details])).toEqual([[account.tokens.sessionId, { method: "pwd", cause: "delete_account" }]]);
  });

  it("DeleteAccount soft-deletes: no login, refresh or verify afterwards", async () => {
    const account = await signUp(auth, "delete-ok");
    const other = await login(auth, account.email);
    await auth.deleteAccount({ password: PASSWORD }, bearer(account.tokens.accessToken));

    const [row] = await t.db.query(`SELECT status, deleted_at FROM users WHERE id = $1`, [account.userId]);
    expect(row.status).toBe("deleted");
    expect(row.deleted_at).toBeInstanceOf(Date);
    expect((await sessionRows(t.db, account.userId)).map((r) => r.revoke_reason)).toEqual(["account_deleted", "account_deleted"]);
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "ACCOUNT_DELETED", session_id: account.tokens.sessionId });

    // Told plainly after the right password only (issue 16; test/contract/inactive-accounts.test.ts).
    await expectError(auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.PermissionDenied, reason: "ACCOUNT_DELETED" });
    const unknown = await expectError(auth.login({ identifier: "nobody@example.com", password: PASSWORD }), { code: Code.Unauthenticated });
    const deleted = await expectError(auth.login({ identifier: account.email, password: "not the password" }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    expect(deleted.rawMessage).toBe(unknown.rawMessage);
    for (const pair of [account.tokens, other]) {
      expect((await t.verify(pair.accessToken)).active).toBe(false);
      await expectError(tokens.refreshToken({ refreshToken: pair.refreshToken }), { code: Code.Unauthenticated });
      await expectError(auth.whoAmI({}, bearer(pair.accessToken)), { code: Code.Unauthenticated });
    }
    expect((await t.verify(other.accessToken)).reason).toBe(InactiveReason.USER_DISABLED);
  });
});
