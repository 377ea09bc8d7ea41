// One-time codes to the account's verified email address or phone number as a second factor
// (issue 16, item 4), over every transport: enrolment, the challenge and its methods, SendMfaCode,
// VerifyMfa, the rule that one address is never both factors, the factor following the verified
// flag, and every refusal leaving stored data unchanged.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { MfaMethod, OtpChannel, OtpPurpose, type MfaChallenge } from "../../gen/identity/v1/common_pb.js";
import { auditRows, bearer, PASSWORD, signUp, uniquePhone, type TestAccount } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { wrongCode } from "../support/outbox.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

// Suites send many codes from 127.0.0.1; the per-address limits are tested in test/otp/.
const t = setupService({ env: { OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000", OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "10000" } });

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const [row] = (await t.db.query(sql, params)) as Array<{ n: number }>;
  return row!.n;
}

const sessionCount = (userId: string) => count(`SELECT count(*)::int AS n FROM sessions WHERE user_id = $1`, [userId]);

/**
 * Marks the account's addresses verified directly: proving them by code is OtpService's own
 * suite (test/otp/contact-and-reset.test.ts); here they only need to be verified.
 */
async function markVerified(userId: string, which: { email?: boolean; phone?: boolean } = { email: true, phone: true }): Promise<void> {
  if (which.email) await t.db.query(`UPDATE users SET email_verified_at = now() WHERE id = $1 AND email IS NOT NULL`, [userId]);
  if (which.phone) await t.db.query(`UPDATE users SET phone_verified_at = now() WHERE id = $1 AND phone IS NOT NULL`, [userId]);
}

describe.each(transportNames)("code second factors over %s", (name) => {
  const { auth, mfa, otp } = t.clients(name);

  /** A signed-up account with a verified email (and phone) and the given code factors on. */
  async function enrolled(tag: string, channels: OtpChannel[], options: { phone?: boolean } = {}): Promise<TestAccount & { phone: string }> {
    const phone = uniquePhone();
    const account = await signUp(auth, `${tag}-${name}`, options.phone === false ? {} : { phone });
    await markVerified(account.userId);
    for (const channel of channels) await mfa.enableCodeFactor({ channel, password: PASSWORD }, bearer(account.tokens.accessToken));
    return { ...account, phone };
  }

  async function challengeOf(identifier: string): Promise<MfaChallenge> {
    const login = await auth.login({ identifier, password: PASSWORD });
    if (login.result.case !== "mfaChallenge") throw new Error(`expected an MFA challenge, got ${login.result.case}`);
    return login.result.value;
  }

  it("enrols the verified email address; a password login then asks for a code sent there, and the code signs in once", async () => {
    const account = await enrolled("email-factor", []);
    const access = bearer(account.tokens.accessToken);
    expect(await mfa.getMfaStatus({}, access)).toMatchObject({ totpEnabled: false, emailCodeEnabled: false, smsCodeEnabled: false });
    await mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, access);
    expect(await mfa.getMfaStatus({}, access)).toMatchObject({ totpEnabled: false, emailCodeEnabled: true, smsCodeEnabled: false });
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "MFA_ENABLED", details: { method: "email_code" } });

    const sessionsBefore = await sessionCount(account.userId);
    const challenge = await challengeOf(account.email);
    expect(challenge.methods).toEqual([MfaMethod.EMAIL_CODE]);
    expect(await sessionCount(account.userId)).toBe(sessionsBefore);

    const sent = await mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.EMAIL_CODE });
    expect(Number(sent.expireTime!.seconds)).toBeGreaterThan(Date.now() / 1000);
    const message = t.outbox.messages(account.email).at(-1)!;
    expect(message.subject).toBe("Your sign-in confirmation code");
    const code = t.outbox.lastCode(account.email);
    // Stored only as a keyed hash, under its own purpose, bound to the account.
    const [row] = (await t.db.query(`SELECT purpose, user_id, encode(code_hash, 'hex') AS hash FROM otp_codes WHERE destination = $1`, [account.email])) as Array<{
      purpose: string;
      user_id: string;
      hash: string;
    }>;
    expect(row).toMatchObject({ purpose: "mfa", user_id: account.userId });
    expect(row!.hash).not.toContain(code);

    const done = await mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: code } });
    expect(done.user?.id).toBe(account.userId);
    const verified = await t.verify(done.tokens!.accessToken);
    expect(verified.active).toBe(true);
    expect(verified.amr).toEqual(["pwd", "otp", "email", "mfa"]);
    expect(await sessionCount(account.userId)).toBe(sessionsBefore + 1);
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "LOGIN_SUCCEEDED", details: { method: "pwd+otp+email+mfa" } });

    // Single use: the challenge is spent, and the code answers no other challenge.
    await expectError(mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: code } }), {
      code: Code.Unauthenticated,
      reason: "MFA_CHALLENGE_INVALID",
    });
    const next = await challengeOf(account.email);
    await t.expectUnchanged(
      () => expectError(mfa.verifyMfa({ challengeToken: next.challengeToken, code: { case: "emailCode", value: code } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" }),
      ["mfa_challenges", "audit_events", "rate_limits"], // the attempt counts, is audited and limited
    );
  });

  it("binds a code to its challenge: a code sent for one challenge does not answer another", async () => {
    const account = await enrolled("bound", [OtpChannel.SMS]);
    const first = await challengeOf(account.email);
    const second = await challengeOf(account.email);
    expect(first.methods).toEqual([MfaMethod.SMS_CODE]);
    await mfa.sendMfaCode({ challengeToken: first.challengeToken, method: MfaMethod.SMS_CODE });
    const code = t.outbox.lastCode(account.phone);
    await expectError(mfa.verifyMfa({ challengeToken: second.challengeToken, code: { case: "smsCode", value: code } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    const done = await mfa.verifyMfa({ challengeToken: first.challengeToken, code: { case: "smsCode", value: code } });
    expect((await t.verify(done.tokens!.accessToken)).amr).toEqual(["pwd", "otp", "sms", "mfa"]);
  });

  it("lists every second factor of the account in the challenge", async () => {
    const account = await enrolled("both", [OtpChannel.EMAIL, OtpChannel.SMS]);
    expect((await challengeOf(account.email)).methods).toEqual([MfaMethod.EMAIL_CODE, MfaMethod.SMS_CODE]);
    expect(await mfa.getMfaStatus({}, bearer(account.tokens.accessToken))).toMatchObject({ emailCodeEnabled: true, smsCodeEnabled: true });
  });

  it("refuses enrolment without a verified address, without the password, or twice, and stores nothing", async () => {
    const account = await signUp(auth, `enrol-refused-${name}`);
    const access = bearer(account.tokens.accessToken);
    await t.expectUnchanged(async () => {
      // Unverified email; no phone at all.
      await expectError(mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, access), { code: Code.FailedPrecondition, reason: "CONTACT_NOT_VERIFIED" });
      await expectError(mfa.enableCodeFactor({ channel: OtpChannel.SMS, password: PASSWORD }, access), { code: Code.FailedPrecondition, reason: "CONTACT_NOT_VERIFIED" });
      await expectError(mfa.enableCodeFactor({ channel: OtpChannel.UNSPECIFIED, password: "" }, access), { code: Code.InvalidArgument, fields: ["channel", "password"] });
      await expectError(mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
      await expectError(mfa.disableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, access), { code: Code.FailedPrecondition, reason: "MFA_NOT_ENABLED" });
    }, ["rate_limits"]); // the right password still takes (and gives back) a slot of its budget
    await markVerified(account.userId);
    await t.expectUnchanged(
      () => expectError(mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: "not the password" }, access), { code: Code.PermissionDenied, reason: "WRONG_PASSWORD" }),
      ["audit_events", "rate_limits"], // a wrong password is audited and counted as at login
    );
    expect(await count(`SELECT count(*)::int AS n FROM mfa_code_factors WHERE user_id = $1`, [account.userId])).toBe(0);
    await mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, access);
    await t.expectUnchanged(
      () => expectError(mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, access), { code: Code.FailedPrecondition, reason: "MFA_ALREADY_ENABLED" }),
      ["rate_limits"],
    );
  });

  it("refuses enrolment on an account without a password (a code is the step after one)", async () => {
    const phone = uniquePhone();
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN });
    const created = await otp.verifyOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(phone) });
    expect(created.result.case).toBe("tokens");
    const access = bearer((created.result.value as { accessToken: string }).accessToken);
    await t.expectUnchanged(() =>
      expectError(mfa.enableCodeFactor({ channel: OtpChannel.SMS, password: "any password at all" }, access), { code: Code.FailedPrecondition, reason: "PASSWORD_NOT_SET" }),
    );
  });

  it("SendMfaCode refuses a method the challenge does not list, and anything but a live challenge, sending nothing", async () => {
    const account = await enrolled("send-refused", [OtpChannel.EMAIL]);
    const challenge = await challengeOf(account.email);
    await t.expectNothingStored(async () => {
      await expectError(mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.SMS_CODE }), { code: Code.FailedPrecondition, reason: "MFA_METHOD_UNAVAILABLE" });
      await expectError(mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.TOTP }), { code: Code.InvalidArgument, fields: ["method"] });
      await expectError(mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.UNSPECIFIED }), { code: Code.InvalidArgument, fields: ["method"] });
      await expectError(mfa.sendMfaCode({ challengeToken: "mfa_unknown", method: MfaMethod.EMAIL_CODE }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" });
      await expectError(mfa.sendMfaCode({ challengeToken: "", method: MfaMethod.EMAIL_CODE }), { code: Code.InvalidArgument, fields: ["challenge_token"] });
      // A TOTP code where only the email code is offered: refused before anything is counted.
      await expectError(mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "totpCode", value: "123456" } }), {
        code: Code.FailedPrecondition,
        reason: "MFA_METHOD_UNAVAILABLE",
      });
      await expectError(mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: "12ab" } }), { code: Code.InvalidArgument, fields: ["email_code"] });
    });
  });

  it("counts a wrong code against the challenge and the code; expired and exhausted codes say so", async () => {
    const account = await enrolled("wrong-code", [OtpChannel.EMAIL]);
    const challenge = await challengeOf(account.email);
    await mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.EMAIL_CODE });
    const code = t.outbox.lastCode(account.email);
    await expectError(mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: wrongCode(code) } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    expect(await count(`SELECT attempts AS n FROM otp_codes WHERE destination = $1 AND purpose = 'mfa'`, [account.email])).toBe(1);
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "MFA_FAILED", details: { method: "email", action: "verify_mfa" } });
    await t.db.query(`UPDATE otp_codes SET expires_at = now() - interval '1 second' WHERE destination = $1 AND purpose = 'mfa'`, [account.email]);
    await expectError(mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: code } }), { code: Code.Unauthenticated, reason: "OTP_EXPIRED" });
    expect(await sessionCount(account.userId)).toBe(1);
  });

  it("a one-time-code sign-in is asked for a different factor: a code to the same address is never both", async () => {
    const account = await enrolled("otp-first", [OtpChannel.EMAIL, OtpChannel.SMS]);
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN });
    const loginCode = t.outbox.lastCode(account.email);
    const verified = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN, code: loginCode });
    if (verified.result.case !== "mfaChallenge") throw new Error("expected an MFA challenge");
    const challenge = verified.result.value;
    expect(challenge.methods).toEqual([MfaMethod.SMS_CODE]);
    await t.expectNothingStored(async () => {
      await expectError(mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.EMAIL_CODE }), { code: Code.FailedPrecondition, reason: "MFA_METHOD_UNAVAILABLE" });
      // The sign-in code itself, offered as the second factor.
      await expectError(mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: loginCode } }), {
        code: Code.FailedPrecondition,
        reason: "MFA_METHOD_UNAVAILABLE",
      });
    });
    await mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.SMS_CODE });
    const done = await mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "smsCode", value: t.outbox.lastCode(account.phone) } });
    expect((await t.verify(done.tokens!.accessToken)).amr).toEqual(["otp", "email", "sms", "mfa"]);
  });

  it("a one-time-code sign-in whose only second factor is that same address is refused, and the code stays unspent", async () => {
    const account = await enrolled("otp-only-email", [OtpChannel.EMAIL], { phone: false });
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN });
    const loginCode = t.outbox.lastCode(account.email);
    const request = { channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN, code: loginCode };
    await t.expectNothingStored(
      () => expectError(otp.verifyOtp(request), { code: Code.FailedPrecondition, reason: "MFA_METHOD_UNAVAILABLE" }),
      { except: ["rate_limits"] }, // the check's slot is taken and given back
    );
    expect(await count(`SELECT count(*)::int AS n FROM mfa_challenges WHERE user_id = $1`, [account.userId])).toBe(0);
    // The password sign-in still works: password, then the email code.
    const challenge = await challengeOf(account.email);
    expect(challenge.methods).toEqual([MfaMethod.EMAIL_CODE]);
  });

  it("the factor follows the verified flag: an address no longer verified is no factor", async () => {
    const account = await enrolled("follows", [OtpChannel.EMAIL]);
    const access = bearer(account.tokens.accessToken);
    // As when an address is replaced by one not (yet) proven: the factor stops counting at once.
    await t.db.query(`UPDATE users SET email_verified_at = NULL WHERE id = $1`, [account.userId]);
    expect(await mfa.getMfaStatus({}, access)).toMatchObject({ emailCodeEnabled: false });
    const login = await auth.login({ identifier: account.email, password: PASSWORD });
    expect(login.result.case).toBe("tokens");
    // Verified again (a change of address completes only once a code sent there is verified).
    await markVerified(account.userId, { email: true });
    expect((await challengeOf(account.email)).methods).toEqual([MfaMethod.EMAIL_CODE]);
    // A challenge whose factor went away in between is refused.
    const pending = await challengeOf(account.email);
    await t.db.query(`UPDATE users SET email_verified_at = NULL WHERE id = $1`, [account.userId]);
    await t.expectNothingStored(() =>
      expectError(mfa.sendMfaCode({ challengeToken: pending.challengeToken, method: MfaMethod.EMAIL_CODE }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" }),
    );
  });

  it("disables a code factor with the password; pending challenges end and login needs no second factor", async () => {
    const account = await enrolled("disable", [OtpChannel.EMAIL]);
    const access = bearer(account.tokens.accessToken);
    const pending = await challengeOf(account.email);
    await t.expectUnchanged(
      () => expectError(mfa.disableCodeFactor({ channel: OtpChannel.EMAIL, password: "not the password" }, access), { code: Code.PermissionDenied, reason: "WRONG_PASSWORD" }),
      ["audit_events", "rate_limits"],
    );
    await mfa.disableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, access);
    expect(await mfa.getMfaStatus({}, access)).toMatchObject({ emailCodeEnabled: false });
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({ type: "MFA_DISABLED", details: { method: "email_code" } });
    await expectError(mfa.sendMfaCode({ challengeToken: pending.challengeToken, method: MfaMethod.EMAIL_CODE }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" });
    expect((await auth.login({ identifier: account.email, password: PASSWORD })).result.case).toBe("tokens");
  });

  it("of 20 concurrent VerifyMfa calls with the right code, exactly one starts a session", async () => {
    const account = await enrolled("race", [OtpChannel.EMAIL]);
    const challenge = await challengeOf(account.email);
    await mfa.sendMfaCode({ challengeToken: challenge.challengeToken, method: MfaMethod.EMAIL_CODE });
    const code = t.outbox.lastCode(account.email);
    const sessionsBefore = await sessionCount(account.userId);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "emailCode", value: code } })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await sessionCount(account.userId)).toBe(sessionsBefore + 1);
  });
});

it("a claim of an unverified address discards the code factors the squatter set up", async () => {
  const { auth, mfa, otp } = t.clients("grpc");
  // The squatter signs up with the victim's address (unverified) and their own phone, proves the
  // phone and makes it a second factor.
  const squatter = await signUp(auth, "squatter", { phone: uniquePhone() });
  await markVerified(squatter.userId, { phone: true });
  await mfa.enableCodeFactor({ channel: OtpChannel.SMS, password: PASSWORD }, bearer(squatter.tokens.accessToken));
  // The owner of the address signs in by code: the account is theirs, without the squatter's factor.
  await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: squatter.email, purpose: OtpPurpose.LOGIN });
  const owner = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: squatter.email, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(squatter.email) });
  expect(owner.result.case).toBe("tokens");
  expect(await count(`SELECT count(*)::int AS n FROM mfa_code_factors WHERE user_id = $1`, [squatter.userId])).toBe(0);
  // A phone the owner proves later is no factor they did not enable.
  await markVerified(squatter.userId, { phone: true });
  await t.db.query(`UPDATE users SET phone = $2, phone_verified_at = now() WHERE id = $1`, [squatter.userId, uniquePhone()]);
  const access = bearer((owner.result.value as { accessToken: string }).accessToken);
  expect(await mfa.getMfaStatus({}, access)).toMatchObject({ smsCodeEnabled: false, emailCodeEnabled: false });
});
