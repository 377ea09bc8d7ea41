// Issue 16: AuthService.Reauthenticate over every transport: the session proves its factors again,
// its auth_time and amr are renewed, the refresh token rotates, and each refusal changes nothing.
import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { MfaMethod, OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { ManualClock } from "../../src/domain/clock.js";
import { auditRows, bearer, PASSWORD, signUp, uniqueEmail, violationReasons } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { setupService } from "../support/setup.js";
import { transportNames } from "../support/transports.js";

const clock = new ManualClock(new Date("2026-07-01T09:00:10Z"));
const t = setupService({ clock, env: { OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000" } });
const totp = (secret: string) => generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
const nextStep = () => clock.advance(30_000);

async function sessionRow(sessionId: string) {
  const [row] = (await t.db.query(`SELECT auth_time, created_at, amr FROM sessions WHERE id = $1`, [sessionId])) as Array<{ auth_time: Date; created_at: Date; amr: string[] }>;
  return row!;
}

describe.each(transportNames)("Reauthenticate over %s", (name) => {
  const { auth, tokens, mfa, otp } = t.clients(name);

  /** An account with TOTP on; its access token, secret and backup codes. */
  async function withTotp() {
    const account = await signUp(auth, "reauth-mfa");
    const access = bearer(account.tokens.accessToken);
    const setup = await mfa.setupTotp({}, access);
    nextStep();
    const { backupCodes } = await mfa.confirmTotp({ code: totp(setup.secret) }, access);
    return { account, access, secret: setup.secret, backupCodes };
  }

  it("renews the session's auth_time with the password and rotates its refresh token", async () => {
    const account = await signUp(auth, "reauth");
    clock.advance(120_000);
    const { tokens: renewed } = await auth.reauthenticate({ password: PASSWORD }, bearer(account.tokens.accessToken));
    expect(renewed?.sessionId).toBe(account.tokens.sessionId);
    const claims = decodeJwt(renewed!.accessToken);
    expect(claims.auth_time).toBe(Math.floor(clock.now().getTime() / 1000));
    expect(claims.auth_time).toBeGreaterThan(decodeJwt(account.tokens.accessToken).auth_time as number);
    expect(claims.amr).toEqual(["pwd"]);
    const row = await sessionRow(account.tokens.sessionId);
    expect(row.auth_time).toEqual(clock.now());
    expect(row.created_at.getTime()).toBeLessThan(row.auth_time.getTime());

    // The new refresh token works and keeps the renewed auth_time; the one held before is spent.
    const refreshed = (await tokens.refreshToken({ refreshToken: renewed!.refreshToken })).tokens!;
    expect(decodeJwt(refreshed.accessToken).auth_time).toBe(claims.auth_time);
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated });
    expect((await auditRows(t.db, account.userId)).filter((e) => e.type === "REAUTHENTICATED")).toEqual([
      { type: "REAUTHENTICATED", session_id: account.tokens.sessionId, details: { method: "pwd" } },
    ]);
  });

  it("refuses a wrong password like ChangePassword does (audited, counted), changing nothing else", async () => {
    const account = await signUp(auth, "reauth-wrong");
    await t.expectUnchanged(
      () => expectError(auth.reauthenticate({ password: "not the password" }, bearer(account.tokens.accessToken)), { code: Code.PermissionDenied, reason: "WRONG_PASSWORD" }),
      ["audit_events", "rate_limits"],
    );
    const failed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGIN_FAILED");
    expect(failed).toEqual([{ type: "LOGIN_FAILED", session_id: account.tokens.sessionId, details: { method: "pwd", cause: "reauthenticate" } }]);
    await t.expectNothingStored(async () => {
      await expectError(auth.reauthenticate({ password: "" }, bearer(account.tokens.accessToken)), { code: Code.InvalidArgument, fields: ["password"] });
      await expectError(auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.TOTP, mfaCode: "123456" }, bearer(account.tokens.accessToken)), {
        code: Code.FailedPrecondition,
        reason: "MFA_NOT_ENABLED",
      });
      await expectError(auth.reauthenticate({ password: PASSWORD }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
    });
  });

  it("asks an account with TOTP for its code too, and records otp or kba with mfa", async () => {
    const { account, access, secret, backupCodes } = await withTotp();
    await t.expectNothingStored(async () => {
      const missing = await expectError(auth.reauthenticate({ password: PASSWORD }, access), { code: Code.InvalidArgument, fields: ["mfa_method", "mfa_code"] });
      expect(violationReasons(missing)).toEqual({ mfa_method: "REQUIRED", mfa_code: "REQUIRED" });
      await expectError(auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.TOTP, mfaCode: "12ab" }, access), { code: Code.InvalidArgument, fields: ["mfa_code"] });
      await expectError(auth.reauthenticate({ password: PASSWORD, mfaMethod: 99 as MfaMethod, mfaCode: "123456" }, access), { code: Code.InvalidArgument, fields: ["mfa_method"] });
    });
    nextStep();
    const wrong = String((Number(totp(secret)) + 1) % 1_000_000).padStart(6, "0");
    await t.expectUnchanged(
      () => expectError(auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.TOTP, mfaCode: wrong }, access), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" }),
      ["audit_events", "rate_limits"],
    );
    // A wrong password with a right code: the code is not even looked at.
    await t.expectUnchanged(
      () => expectError(auth.reauthenticate({ password: "wrong password", mfaMethod: MfaMethod.TOTP, mfaCode: totp(secret) }, access), { code: Code.PermissionDenied, reason: "WRONG_PASSWORD" }),
      ["audit_events", "rate_limits"],
    );

    const byTotp = (await auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.TOTP, mfaCode: totp(secret) }, access)).tokens!;
    expect(decodeJwt(byTotp.accessToken).amr).toEqual(["pwd", "otp", "mfa"]);
    expect((await sessionRow(account.tokens.sessionId)).amr).toEqual(["pwd", "otp", "mfa"]);
    // The same TOTP step is accepted once.
    await expectError(auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.TOTP, mfaCode: totp(secret) }, bearer(byTotp.accessToken)), {
      code: Code.Unauthenticated,
      reason: "MFA_CODE_INVALID",
    });
    const byBackup = (await auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.BACKUP_CODE, mfaCode: backupCodes[0]! }, bearer(byTotp.accessToken))).tokens!;
    expect(decodeJwt(byBackup.accessToken).amr).toEqual(["pwd", "kba", "mfa"]);
    expect((await auth.whoAmI({}, bearer(byBackup.accessToken))).amr).toEqual(["pwd", "kba", "mfa"]);
    await expectError(auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.BACKUP_CODE, mfaCode: backupCodes[0]! }, bearer(byBackup.accessToken)), {
      code: Code.Unauthenticated,
      reason: "MFA_CODE_INVALID",
    });
  });

  it("of concurrent Reauthenticates with one TOTP code exactly one renews the session", async () => {
    const { access, secret } = await withTotp();
    nextStep();
    const code = totp(secret);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => auth.reauthenticate({ password: PASSWORD, mfaMethod: MfaMethod.TOTP, mfaCode: code }, access)),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
  });

  it("an account without a password gets FAILED_PRECONDITION (PASSWORD_NOT_SET) and nothing changes", async () => {
    const email = uniqueEmail("passwordless");
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN });
    const signedIn = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(email) });
    expect(signedIn.user?.hasPassword).toBe(false);
    expect(signedIn.result.case).toBe("tokens");
    const access = (signedIn.result.value as { accessToken: string }).accessToken;
    await t.expectNothingStored(() =>
      expectError(auth.reauthenticate({ password: PASSWORD }, bearer(access)), { code: Code.FailedPrecondition, reason: "PASSWORD_NOT_SET" }),
    );
  });
});
