// AuthService.Logout over every transport: this session, or every session of the account.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { auditRows, bearer, login, sessionRows, signUp } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("Logout over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  it("ends only the caller's session", async () => {
    const account = await signUp(auth, "logout-one");
    const other = await login(auth, account.email);
    const response = await auth.logout({}, bearer(account.tokens.accessToken));
    expect(response.endedSessionCount).toBe(1);

    expect(await t.verify(account.tokens.accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated });
    await expectError(auth.whoAmI({}, bearer(account.tokens.accessToken)), { code: Code.Unauthenticated, reason: "ACCESS_TOKEN_INVALID" });
    expect((await auth.whoAmI({}, bearer(other.accessToken))).sessionId).toBe(other.sessionId);

    const rows = await sessionRows(t.db, account.userId);
    expect(rows.map((r) => [r.id, r.revoke_reason])).toEqual([
      [account.tokens.sessionId, "logout"],
      [other.sessionId, null],
    ]);
    const logout = (await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGOUT");
    expect(logout).toEqual([{ type: "LOGOUT", session_id: account.tokens.sessionId, details: { all_sessions: "false" } }]);
  });

  it("ends every session with all_sessions", async () => {
    const account = await signUp(auth, "logout-all");
    const others = [await login(auth, account.email), await login(auth, account.email)];
    const response = await auth.logout({ allSessions: true }, bearer(others[0]!.accessToken));
    expect(response.endedSessionCount).toBe(3);

    for (const pair of [account.tokens, ...others]) {
      expect(await t.verify(pair.accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
      await expectError(tokens.refreshToken({ refreshToken: pair.refreshToken }), { code: Code.Unauthenticated });
    }
    expect((await sessionRows(t.db, account.userId)).map((r) => r.revoke_reason)).toEqual(["logout", "logout", "logout"]);
    const logout = (await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGOUT");
    expect(logout).toEqual([{ type: "LOGOUT", session_id: others[0]!.sessionId, details: { all_sessions: "true" } }]);
  });

  it("is UNAUTHENTICATED without a live token and changes nothing", async () => {
    const account = await signUp(auth, "logout-twice");
    await auth.logout({}, bearer(account.tokens.accessToken));
    await t.expectUnchanged(async () => {
      await expectError(auth.logout({ allSessions: true }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
      await expectError(auth.logout({}, bearer(account.tokens.accessToken)), { code: Code.Unauthenticated, reason: "ACCESS_TOKEN_INVALID" });
    });
  });
});
