// Issue 16: ChangeEmail / ChangePhone / ConfirmContactChange over every transport: recent
// authentication, a code to the new address, the switch, the notice to the old address, and each
// refusal with the stored data unchanged.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel } from "../../gen/identity/v1/common_pb.js";
import { ManualClock } from "../../src/domain/clock.js";
import { auditRows, bearer, login, PASSWORD, signUp, uniqueEmail, uniquePhone, uniqueUsername, violationReasons } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { wrongCode } from "../support/outbox.js";
import { setupService } from "../support/setup.js";
import { transportNames } from "../support/transports.js";

const clock = new ManualClock(new Date("2026-06-01T08:00:00Z"));
// Every test sends codes from 127.0.0.1.
const t = setupService({ clock, env: { OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000", OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "10000" } });
const EMAIL = OtpChannel.EMAIL;
const SMS = OtpChannel.SMS;

async function contactRow(userId: string) {
  const [row] = (await t.db.query(`SELECT email, email_verified_at, phone, phone_verified_at FROM users WHERE id = $1`, [userId])) as Array<{
    email: string | null;
    email_verified_at: Date | null;
    phone: string | null;
    phone_verified_at: Date | null;
  }>;
  return row!;
}

describe.each(transportNames)("ChangeEmail, ChangePhone and ConfirmContactChange over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  it("changes the email address once the code sent to the new one is confirmed; the old one stops signing in and is told", async () => {
    const account = await signUp(auth, "mover");
    const access = bearer(account.tokens.accessToken);
    const next = uniqueEmail("moved");
    const sent = await auth.changeEmail({ email: ` ${next.toUpperCase()} ` }, access);
    expect(sent.expireTime).toBeDefined();
    // Nothing switched yet: the old address still signs in, the new one not.
    expect(await contactRow(account.userId)).toMatchObject({ email: account.email });
    await login(auth, account.email);
    await expectError(auth.login({ identifier: next, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    expect(t.outbox.messages(account.email)).toEqual([]);

    clock.advance(1000); // audit rows in order
    const { user } = await auth.confirmContactChange({ channel: EMAIL, destination: next, code: t.outbox.lastCode(next) }, access);
    expect(user).toMatchObject({ id: account.userId, email: next, emailVerified: true });
    expect((await contactRow(account.userId)).email_verified_at).toEqual(clock.now());
    await expectError(auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    await login(auth, next);
    expect(t.outbox.messages(account.email).map((m) => m.subject)).toEqual(["Your email address was changed"]);
    expect(t.outbox.messages(account.email)[0]!.text).not.toContain(next);
    const events = (await auditRows(t.db, account.userId)).filter((e) => e.type.startsWith("CONTACT_"));
    expect(events).toEqual([
      { type: "CONTACT_CHANGE_REQUESTED", session_id: account.tokens.sessionId, details: { channel: "email" } },
      { type: "CONTACT_CHANGED", session_id: account.tokens.sessionId, details: { channel: "email", added: "false" } },
    ]);
    // Single use.
    await expectError(auth.confirmContactChange({ channel: EMAIL, destination: next, code: t.outbox.lastCode(next) }, access), { code: Code.Unauthenticated });
  });

  it("adds an email to a phone-only account and a phone to an email account, verified by their codes", async () => {
    const phone = uniquePhone();
    const phoneOnly = await auth.signUp({ phone, username: uniqueUsername("ph"), password: PASSWORD });
    const email = uniqueEmail("added");
    await auth.changeEmail({ email }, bearer(phoneOnly.tokens!.accessToken));
    const added = await auth.confirmContactChange({ channel: EMAIL, destination: email, code: t.outbox.lastCode(email) }, bearer(phoneOnly.tokens!.accessToken));
    expect(added.user).toMatchObject({ email, emailVerified: true, phone, phoneVerified: false });
    await login(auth, email);
    await login(auth, phone);
    expect(t.outbox.messages(phone).filter((m) => m.subject.includes("changed"))).toEqual([]);

    const account = await signUp(auth, "addphone");
    const newPhone = uniquePhone();
    await auth.changePhone({ phone: newPhone }, bearer(account.tokens.accessToken));
    const { user } = await auth.confirmContactChange({ channel: SMS, destination: newPhone, code: t.outbox.lastCode(newPhone) }, bearer(account.tokens.accessToken));
    expect(user).toMatchObject({ email: account.email, phone: newPhone, phoneVerified: true });
    await login(auth, newPhone);
    const changed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "CONTACT_CHANGED");
    expect(changed).toMatchObject([{ details: { channel: "sms", added: "true" } }]);
  });

  it("a password-reset code sent to the old address dies with the change", async () => {
    const account = await signUp(auth, "resetdies");
    await auth.requestPasswordReset({ channel: EMAIL, destination: account.email }, {});
    const resetCode = t.outbox.lastCode(account.email);
    const next = uniqueEmail("resetdies-new");
    await auth.changeEmail({ email: next }, bearer(account.tokens.accessToken));
    const pending = `SELECT count(*)::int AS n FROM otp_codes WHERE channel = 'email' AND destination = $1 AND purpose = 'password_reset' AND consumed_at IS NULL`;
    expect((await t.db.query(pending, [account.email]))[0].n).toBe(1);
    await auth.confirmContactChange({ channel: EMAIL, destination: next, code: t.outbox.lastCode(next) }, bearer(account.tokens.accessToken));
    expect((await t.db.query(pending, [account.email]))[0].n).toBe(0);
    await expectError(auth.resetPassword({ channel: EMAIL, destination: account.email, code: resetCode, newPassword: "another long passphrase" }), {
      code: Code.Unauthenticated,
      reason: "OTP_INVALID",
    });
  });

  it("refuses an address another account has as sign-up does (IDENTIFIER_TAKEN), sending nothing and changing nothing", async () => {
    const other = await signUp(auth, "other", { phone: uniquePhone() });
    const otherPhone = (await contactRow(other.userId)).phone!;
    const account = await signUp(auth, "taker");
    const signUpAnswer = await expectError(auth.signUp({ email: other.email, password: PASSWORD }), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" });
    for (const call of [() => auth.changeEmail({ email: other.email.toUpperCase() }, bearer(account.tokens.accessToken)), () => auth.changePhone({ phone: otherPhone }, bearer(account.tokens.accessToken))]) {
      const error = await t.expectNothingStored(() => expectError(call(), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" }), { except: ["rate_limits"] });
      expect(error.rawMessage).toBe(signUpAnswer.rawMessage);
    }
  });

  it("refuses when another account took the address between the code and its confirmation, changing nothing", async () => {
    const account = await signUp(auth, "slow");
    const wanted = uniqueEmail("contested");
    await auth.changeEmail({ email: wanted }, bearer(account.tokens.accessToken));
    const code = t.outbox.lastCode(wanted);
    await signUp(auth, "fast", { email: wanted });
    await t.expectUnchanged(
      () => expectError(auth.confirmContactChange({ channel: EMAIL, destination: wanted, code }, bearer(account.tokens.accessToken)), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" }),
      ["rate_limits"],
    );
    expect(await contactRow(account.userId)).toMatchObject({ email: account.email });
    await login(auth, account.email);
  });

  it("refuses a wrong code, a code of another account, bad input and the unauthenticated, changing nothing but the attempt", async () => {
    const account = await signUp(auth, "wrongcode");
    const access = bearer(account.tokens.accessToken);
    const next = uniqueEmail("wrongcode-new");
    await auth.changeEmail({ email: next }, access);
    const code = t.outbox.lastCode(next);
    await t.expectUnchanged(
      () => expectError(auth.confirmContactChange({ channel: EMAIL, destination: next, code: wrongCode(code) }, access), { code: Code.Unauthenticated, reason: "OTP_INVALID" }),
      ["otp_codes", "rate_limits"], // the attempt counts
    );
    await t.expectNothingStored(async () => {
      const input = await expectError(auth.changeEmail({ email: "not an address" }, access), { code: Code.InvalidArgument, fields: ["email"] });
      expect(violationReasons(input)).toEqual({ email: "INVALID_EMAIL" });
      await expectError(auth.changePhone({ phone: "0415555" }, access), { code: Code.InvalidArgument, fields: ["phone"] });
      const same = await expectError(auth.changeEmail({ email: account.email }, access), { code: Code.InvalidArgument, fields: ["email"] });
      expect(violationReasons(same)).toEqual({ email: "UNCHANGED" });
      await expectError(auth.confirmContactChange({ channel: EMAIL, destination: next, code: "12" }, access), { code: Code.InvalidArgument, fields: ["code"] });
      await expectError(auth.confirmContactChange({ channel: OtpChannel.UNSPECIFIED, destination: next, code }, access), { code: Code.InvalidArgument });
      await expectError(auth.changeEmail({ email: uniqueEmail("anon") }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
      await expectError(auth.confirmContactChange({ channel: EMAIL, destination: next, code }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
    });
    // Bound to the account that asked for it: another account's caller cannot spend it for itself.
    const stranger = await signUp(auth, "stranger");
    await expectError(auth.confirmContactChange({ channel: EMAIL, destination: next, code }, bearer(stranger.tokens.accessToken)), { code: Code.Unauthenticated, reason: "OTP_INVALID" });
    expect(await contactRow(stranger.userId)).toMatchObject({ email: stranger.email });
    expect(await contactRow(account.userId)).toMatchObject({ email: account.email });
  });

  it("of 20 concurrent confirmations of the right code exactly one switches; of two accounts confirming one address exactly one gets it", async () => {
    const account = await signUp(auth, "race");
    const next = uniqueEmail("race-new");
    await auth.changeEmail({ email: next }, bearer(account.tokens.accessToken));
    const code = t.outbox.lastCode(next);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => auth.confirmContactChange({ channel: EMAIL, destination: next, code }, bearer(account.tokens.accessToken))),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    expect((await auditRows(t.db, account.userId)).filter((e) => e.type === "CONTACT_CHANGED")).toHaveLength(1);

    // Both asked before either confirmed (neither address was taken then); the unique index decides.
    const contested = uniqueEmail("race-contested");
    const [a, b] = [await signUp(auth, "race-a"), await signUp(auth, "race-b")];
    await auth.changeEmail({ email: contested }, bearer(a.tokens.accessToken));
    const codeA = t.outbox.lastCode(contested);
    clock.advance(31_000); // the resend cooldown of the address
    await auth.changeEmail({ email: contested }, bearer(b.tokens.accessToken));
    const codeB = t.outbox.lastCode(contested);
    // One code per address and purpose: B's request replaced A's code, so A's no longer works.
    await expectError(auth.confirmContactChange({ channel: EMAIL, destination: contested, code: codeA }, bearer(a.tokens.accessToken)), { code: Code.Unauthenticated });
    await auth.confirmContactChange({ channel: EMAIL, destination: contested, code: codeB }, bearer(b.tokens.accessToken));
    const owners = (await t.db.query(`SELECT id FROM users WHERE email = $1 AND deleted_at IS NULL`, [contested])) as Array<{ id: string }>;
    expect(owners).toEqual([{ id: b.userId }]);
  });

  it("needs a sign-in within REAUTH_MAX_AGE_SECONDS (REAUTHENTICATION_REQUIRED), which Reauthenticate renews", async () => {
    const account = await signUp(auth, "stale");
    clock.advance(301_000);
    // The refreshed access token carries the session's auth_time, now six minutes old.
    const refreshed = (await tokens.refreshToken({ refreshToken: account.tokens.refreshToken })).tokens!;
    const next = uniqueEmail("stale-new");
    await t.expectNothingStored(() =>
      expectError(auth.changeEmail({ email: next }, bearer(refreshed.accessToken)), { code: Code.PermissionDenied, reason: "REAUTHENTICATION_REQUIRED" }),
    );
    await expectError(auth.changePhone({ phone: uniquePhone() }, bearer(refreshed.accessToken)), { code: Code.PermissionDenied, reason: "REAUTHENTICATION_REQUIRED" });
    const renewed = (await auth.reauthenticate({ password: PASSWORD }, bearer(refreshed.accessToken))).tokens!;
    await auth.changeEmail({ email: next }, bearer(renewed.accessToken));
    expect(t.outbox.messages(next)).toHaveLength(1);
  });
});
