// Login to a deleted or disabled account (issue 16, item 5) over every transport: told plainly
// (ACCOUNT_DELETED, ACCOUNT_DISABLED) only after the right password; a wrong password answers
// exactly as for an unknown account. Deleted accounts free their identifiers, so several deleted
// accounts and one live one may share one: the live one wins, then the newest deleted.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { auditRows, bearer, PASSWORD, signUp, uniqueEmail, uniqueUsername } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { limitHits } from "../support/stored-data.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("deleted and disabled accounts at Login over %s", (name) => {
  const { auth } = t.clients(name);

  async function deleteAccount(accessToken: string, password = PASSWORD): Promise<void> {
    await auth.deleteAccount({ password }, bearer(accessToken));
  }

  /** The wrong-password answer, compared with an unknown account's. */
  async function expectLikeUnknown(identifier: string, password: string): Promise<void> {
    const wrong = await t.expectUnchanged(
      () => expectError(auth.login({ identifier, password }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" }),
      ["audit_events", "rate_limits"], // audited and counted as any failed login
    );
    const unknown = await expectError(auth.login({ identifier: uniqueEmail("nobody"), password }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    expect(wrong.rawMessage).toBe(unknown.rawMessage);
    expect(wrong.findDetails(ErrorInfoSchema)).toEqual(unknown.findDetails(ErrorInfoSchema));
  }

  it("tells a deleted account so after the right password only", async () => {
    const account = await signUp(auth, `deleted-${name}`);
    await deleteAccount(account.tokens.accessToken);
    const hitsBefore = await limitHits(t.db, `login-fail:account:user:${account.userId}`);
    const refused = await t.expectUnchanged(
      () => expectError(auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.PermissionDenied, reason: "ACCOUNT_DELETED" }),
      ["audit_events", "rate_limits"],
    );
    expect(refused.rawMessage).toBe("the account has been deleted");
    // A failed login as any other: audited with its cause, and counted in the login limits.
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "LOGIN_FAILED", details: { method: "pwd", cause: "account_deleted" } });
    expect(await limitHits(t.db, `login-fail:account:user:${account.userId}`)).toBe(hitsBefore + 1);
    await expectLikeUnknown(account.email, "not the password");
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "LOGIN_FAILED", details: { cause: "wrong_password" } });
  });

  it("tells a disabled account so after the right password only, by any identifier", async () => {
    const username = uniqueUsername("disabled");
    const account = await signUp(auth, `disabled-${name}`, { username });
    await t.db.query(`UPDATE users SET status = 'disabled' WHERE id = $1`, [account.userId]);
    for (const identifier of [account.email, username]) {
      await t.expectUnchanged(
        () => expectError(auth.login({ identifier, password: PASSWORD }), { code: Code.PermissionDenied, reason: "ACCOUNT_DISABLED" }),
        ["audit_events", "rate_limits"],
      );
    }
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "LOGIN_FAILED", details: { cause: "account_disabled" } });
    await expectLikeUnknown(account.email, "not the password");
    // Enabled again, the same password signs in.
    await t.db.query(`UPDATE users SET status = 'active' WHERE id = $1`, [account.userId]);
    expect((await auth.login({ identifier: account.email, password: PASSWORD })).result.case).toBe("tokens");
  });

  it("with one identifier on several accounts, the live one wins, then the newest deleted", async () => {
    const email = uniqueEmail(`shared-${name}`);
    const passwords = ["first account password", "second account password", "third account password"] as const;
    const first = await signUp(auth, "shared", { email, password: passwords[0] });
    await deleteAccount(first.tokens.accessToken, passwords[0]);
    const second = await signUp(auth, "shared", { email, password: passwords[1] });
    await deleteAccount(second.tokens.accessToken, passwords[1]);
    const third = await signUp(auth, "shared", { email, password: passwords[2] });

    // The live account: its password signs in; a deleted account's password is just wrong.
    const live = await auth.login({ identifier: email, password: passwords[2] });
    expect(live.user?.id).toBe(third.userId);
    await expectLikeUnknown(email, passwords[1]);
    await expectLikeUnknown(email, passwords[0]);

    // All deleted: the newest is the one the identifier names.
    await deleteAccount(third.tokens.accessToken, passwords[2]);
    await expectError(auth.login({ identifier: email, password: passwords[2] }), { code: Code.PermissionDenied, reason: "ACCOUNT_DELETED" });
    await expectLikeUnknown(email, passwords[1]);
    await expectLikeUnknown(email, passwords[0]);
    expect((await auditRows(t.db, third.userId)).filter((e) => e.details.cause === "account_deleted")).toHaveLength(1);
  });

  it("a disabled live account wins over a deleted one with the same identifier", async () => {
    const email = uniqueEmail(`disabled-wins-${name}`);
    const deleted = await signUp(auth, "dw", { email, password: "the deleted one's password" });
    await deleteAccount(deleted.tokens.accessToken, "the deleted one's password");
    const disabled = await signUp(auth, "dw", { email });
    await t.db.query(`UPDATE users SET status = 'disabled' WHERE id = $1`, [disabled.userId]);
    await expectError(auth.login({ identifier: email, password: PASSWORD }), { code: Code.PermissionDenied, reason: "ACCOUNT_DISABLED" });
    await expectLikeUnknown(email, "the deleted one's password");
  });
});
