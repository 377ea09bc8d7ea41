// VERIFY_CONTACT (OtpService) and PASSWORD_RESET (AuthService.RequestPasswordReset and
// ResetPassword) end to end over every transport, codes read from the console provider's log.
import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { auditRows, bearer, login, PASSWORD, sessionRows, signUp, uniquePhone } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const NEW_PASSWORD = "a brand new passphrase";
const clock = new ManualClock();
const t = setupService({ clock, env: { OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000", ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } });

describe.each(transportNames)("contact verification and password reset over %s", (name) => {
  const { otp, auth, tokens } = t.clients(name);

  it("VERIFY_CONTACT marks the caller's own email address and phone number verified", async () => {
    const phone = uniquePhone();
    const account = await signUp(auth, `contact-${name}`, { phone });
    const me = bearer(account.tokens.accessToken);
    const other = await signUp(auth, `contact-other-${name}`);
    const purpose = OtpPurpose.VERIFY_CONTACT;

    await t.expectNothingStored(async () => {
      await expectError(otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose }), {
        code: Code.Unauthenticated,
        reason: "AUTHENTICATION_REQUIRED",
      });
      // Only the caller's own contacts: nobody can make the service message a stranger.
      await expectError(otp.sendOtp({ channel: OtpChannel.EMAIL, destination: other.email, purpose }, me), {
        code: Code.InvalidArgument,
        fields: ["destination"],
      });
      await expectError(otp.sendOtp({ channel: OtpChannel.SMS, destination: uniquePhone(), purpose }, me), {
        code: Code.InvalidArgument,
        fields: ["destination"],
      });
    });

    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email.toUpperCase(), purpose }, me);
    const emailCode = t.outbox.lastCode(account.email);
    await expectError(otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose, code: emailCode }), {
      code: Code.Unauthenticated,
      reason: "AUTHENTICATION_REQUIRED",
    });
    const verified = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose, code: emailCode }, me);
    expect(verified.result.case).toBeUndefined();
    expect(verified).toMatchObject({ newUser: false, user: { id: account.userId, emailVerified: true, phoneVerified: false } });

    await otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose }, me);
    const both = await otp.verifyOtp({ channel: OtpChannel.SMS, destination: phone, purpose, code: t.outbox.lastCode(phone) }, me);
    expect(both.user).toMatchObject({ emailVerified: true, phoneVerified: true });
    const events = (await auditRows(t.db, account.userId)).filter((e) => e.type === "CONTACT_VERIFIED");
    expect(events.map((e) => e.details.channel).sort()).toEqual(["email", "sms"]);
  });

  it("a code works only for the purpose it was sent for", async () => {
    const account = await signUp(auth, `purpose-${name}`);
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN });
    const loginCode = t.outbox.lastCode(account.email);
    await expectError(
      otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.VERIFY_CONTACT, code: loginCode }, bearer(account.tokens.accessToken)),
      { code: Code.Unauthenticated, reason: "OTP_INVALID" },
    );
    await expectError(auth.resetPassword({ channel: OtpChannel.EMAIL, destination: account.email, code: loginCode, newPassword: NEW_PASSWORD }), {
      code: Code.Unauthenticated,
      reason: "OTP_INVALID",
    });
    // VerifyOtp does not spend reset codes: a reset needs the new password.
    await expectError(otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.PASSWORD_RESET, code: loginCode }), {
      code: Code.InvalidArgument,
      fields: ["purpose"],
    });
  });

  it("resets a forgotten password: every session ends and old access tokens stop verifying at once", async () => {
    const account = await signUp(auth, `reset-${name}`);
    const second = await login(auth, account.email);
    clock.advance(1_000);

    const sent = await auth.requestPasswordReset({ channel: OtpChannel.EMAIL, destination: account.email });
    expect(timestampDate(sent.expireTime!).getTime()).toBe(clock.now().getTime() + 300_000);
    expect(t.outbox.messages(account.email).at(-1)?.text).toMatch(/^Your password reset code is \d{6}\./);
    const code = t.outbox.lastCode(account.email);

    // A refused new password spends nothing: the code still works afterwards.
    await expectError(auth.resetPassword({ channel: OtpChannel.EMAIL, destination: account.email, code, newPassword: "short" }), {
      code: Code.InvalidArgument,
      fields: ["new_password"],
    });
    await auth.resetPassword({ channel: OtpChannel.EMAIL, destination: account.email, code, newPassword: NEW_PASSWORD });

    for (const pair of [account.tokens, second]) {
      expect(await t.verify(pair.accessToken)).toMatchObject({ active: false });
      await expectError(tokens.refreshToken({ refreshToken: pair.refreshToken }), { code: Code.Unauthenticated });
    }
    await expectError(auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    const fresh = await login(auth, account.email, NEW_PASSWORD);
    expect(await t.verify(fresh.accessToken)).toMatchObject({ active: true, userId: account.userId });
    expect((await auth.whoAmI({}, bearer(fresh.accessToken))).user).toMatchObject({ emailVerified: true, hasPassword: true });

    const sessions = await sessionRows(t.db, account.userId);
    expect(sessions.slice(0, 2).map((s) => s.revoke_reason)).toEqual(["password_reset", "password_reset"]);
    const reset = (await auditRows(t.db, account.userId)).find((e) => e.type === "PASSWORD_RESET");
    // The address was never verified: the code claims it, and what was set up before goes.
    expect(reset?.details).toEqual({ channel: "email", ended_sessions: "2", contact_claimed: "true", discarded: "password" });

    // Single use.
    await expectError(auth.resetPassword({ channel: OtpChannel.EMAIL, destination: account.email, code, newPassword: "yet another passphrase" }), {
      code: Code.Unauthenticated,
      reason: "OTP_INVALID",
    });
  });

  it("resets by phone, and SendOtp with PASSWORD_RESET sends the same code", async () => {
    const phone = uniquePhone();
    const account = await signUp(auth, `reset-sms-${name}`, { phone });
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.PASSWORD_RESET });
    await auth.resetPassword({ channel: OtpChannel.SMS, destination: phone, code: t.outbox.lastCode(phone), newPassword: NEW_PASSWORD });
    expect(await t.verify(account.tokens.accessToken)).toMatchObject({ active: false });
    await login(auth, phone, NEW_PASSWORD);
  });
});
