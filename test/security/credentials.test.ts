// Credentials under attack (issue 10, items 2, 3, 4 and 5's ResetPassword ordering), end to end
// over every transport with a clock the test moves:
//   - pre-hijacking: whoever put a never-verified address on an account loses every credential
//     they set up (password, TOTP, backup codes, pending challenges) when the owner proves it;
//   - every password, TOTP or backup-code check counts in the same failure budget as Login and
//     VerifyMfa, whichever RPC asks for it, and a failed one is audited;
//   - a change of password, factor or contact ends MFA challenges and reset codes from before it;
//   - of concurrent ChangePassword calls with the same current password exactly one succeeds;
//   - ResetPassword hashes nothing before the limits and the code are checked.
import { Code } from "@connectrpc/connect";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR } from "../../src/domain/accounts/credential-checks.js";
import { AppError } from "../../src/domain/errors.js";
import { limitHits } from "../support/stored-data.js";
import { auditRows, bearer, uniqueEmail, uniquePhone } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { setupService, type ServiceClients } from "../support/setup.js";
import { transportNames } from "../support/transports.js";

const PASSWORD = "a long enough passphrase";
const WRONG_PASSWORD = "not the passphrase at all";
const CHEAP_HASHING = { ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" };
const clock = new ManualClock(new Date("2026-12-01T12:00:10Z"));
const t = setupService({ clock, env: { ...CHEAP_HASHING, OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000", HASH_QUEUE_LIMIT: "1000" } });

const EMAIL = OtpChannel.EMAIL;
const totp = (secret: string) => generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
const nextStep = () => clock.advance(30_000);

/** A 6-digit code that no accepted step (previous, current, next) of `secret` yields now. */
function wrongTotp(secret: string, salt = 0): string {
  const now = Math.floor(clock.now().getTime() / 1000);
  const valid = new Set([-30, 0, 30].map((offset) => generateSync({ secret, epoch: now + offset })));
  let code = (Number(totp(secret)) + 1 + salt * 7919) % 1_000_000;
  while (valid.has(String(code).padStart(6, "0"))) code = (code + 1) % 1_000_000;
  return String(code).padStart(6, "0");
}

/** Every stored row that holds or proves a credential of the account, to show a refusal changed none. */
async function credentialRows(userId: string): Promise<string> {
  const rows = await t.db.query(
    `SELECT
       (SELECT row_to_json(u)::text FROM users u WHERE id = $1) AS users,
       (SELECT coalesce(json_agg(t ORDER BY t.user_id)::text, '') FROM totp_credentials t WHERE user_id = $1) AS totp,
       (SELECT coalesce(json_agg(b ORDER BY b.id)::text, '') FROM backup_codes b WHERE user_id = $1) AS backup,
       (SELECT coalesce(json_agg(s ORDER BY s.id)::text, '') FROM sessions s WHERE user_id = $1) AS sessions,
       (SELECT coalesce(json_agg(o ORDER BY o.channel, o.destination, o.purpose)::text, '') FROM otp_codes o
          JOIN users u ON u.id = $1 AND o.destination IN (lower(u.email), u.phone)) AS codes`,
    [userId],
  );
  return JSON.stringify(rows);
}

async function count(sql: string, params: unknown[]): Promise<number> {
  const [row] = (await t.db.query(sql, params)) as Array<{ n: number }>;
  return row!.n;
}

type Api = ServiceClients;

/** Signs up with email and password and turns TOTP on; returns the secret and backup codes. */
async function enrolled(api: Api, email: string) {
  const signedUp = await api.auth.signUp({ email, password: PASSWORD });
  const access = signedUp.tokens!.accessToken;
  const setup = await api.mfa.setupTotp({}, bearer(access));
  nextStep();
  const { backupCodes } = await api.mfa.confirmTotp({ code: totp(setup.secret) }, bearer(access));
  return { email, userId: signedUp.user!.id, access, secret: setup.secret, backupCodes };
}

/** The owner proves the address with a VERIFY_CONTACT code. */
async function verifyEmail(api: Api, email: string, access: string) {
  await api.otp.sendOtp({ channel: EMAIL, destination: email, purpose: OtpPurpose.VERIFY_CONTACT }, bearer(access));
  await api.otp.verifyOtp({ channel: EMAIL, destination: email, purpose: OtpPurpose.VERIFY_CONTACT, code: t.outbox.lastCode(email) }, bearer(access));
  clock.advance(31_000); // past the resend cooldown of the address
}

async function challengeOf(api: Api, email: string, password = PASSWORD): Promise<string> {
  const login = await api.auth.login({ identifier: email, password });
  if (login.result.case !== "mfaChallenge") throw new Error(`expected an MFA challenge, got ${login.result.case}`);
  return login.result.value.challengeToken;
}

describe.each(transportNames)("credentials over %s", (name) => {
  const withApi = (test: (api: Api) => Promise<void>) => async () => {
    clock.advance(3_600_000); // every test starts with fresh per-address limits
    await test(t.clients(name));
  };

  it("pre-hijacking: claiming the address by code removes the squatter's password, TOTP, backup codes and challenges", withApi(async (api) => {
    // The squatter signs up with the owner's address, adds a password and TOTP, and keeps a challenge.
    const squatter = await enrolled(api, uniqueEmail(`hijack-${name}`));
    const pending = await challengeOf(api, squatter.email);

    const sent = await api.otp.sendOtp({ channel: EMAIL, destination: squatter.email, purpose: OtpPurpose.LOGIN });
    expect(sent.expireTime).toBeDefined();
    const owner = await api.otp.verifyOtp({ channel: EMAIL, destination: squatter.email, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(squatter.email) });
    // The owner is in: no second factor they could never pass.
    expect(owner.result.case).toBe("tokens");
    if (owner.result.case !== "tokens") return;
    const ownerAccess = owner.result.value.accessToken;
    expect(owner.user).toMatchObject({ id: squatter.userId, emailVerified: true, hasPassword: false });
    expect(await api.mfa.getMfaStatus({}, bearer(ownerAccess))).toMatchObject({ totpEnabled: false, backupCodesRemaining: 0 });
    expect(await count(`SELECT count(*)::int AS n FROM totp_credentials WHERE user_id = $1`, [squatter.userId])).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM backup_codes WHERE user_id = $1`, [squatter.userId])).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM mfa_challenges WHERE user_id = $1 AND used_at IS NULL`, [squatter.userId])).toBe(0);

    // The squatter's challenge, code and password are all dead.
    nextStep();
    await expectError(api.mfa.verifyMfa({ challengeToken: pending, code: { case: "totpCode", value: totp(squatter.secret) } }), {
      code: Code.Unauthenticated,
      reason: "MFA_CHALLENGE_INVALID",
    });
    await expectError(api.auth.login({ identifier: squatter.email, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });

    // Audited: what was discarded, and that MFA went off.
    const events = await auditRows(t.db, squatter.userId);
    expect(events.find((e) => e.type === "CONTACT_VERIFIED")?.details).toEqual({
      channel: "email",
      contact_claimed: "true",
      discarded: "password,totp,backup_codes",
    });
    expect(events.find((e) => e.type === "MFA_DISABLED")?.details).toEqual({ cause: "contact_claimed" });

    // The owner may set up their own factor.
    const setup = await api.mfa.setupTotp({}, bearer(ownerAccess));
    nextStep();
    await api.mfa.confirmTotp({ code: totp(setup.secret) }, bearer(ownerAccess));
  }));

  it("pre-hijacking: a password reset by the never-verified address removes the squatter's TOTP too", withApi(async (api) => {
    const squatter = await enrolled(api, uniqueEmail(`hijack-reset-${name}`));
    await api.auth.requestPasswordReset({ channel: EMAIL, destination: squatter.email });
    const newPassword = "the owner's own passphrase";
    await api.auth.resetPassword({ channel: EMAIL, destination: squatter.email, code: t.outbox.lastCode(squatter.email), newPassword });
    const login = await api.auth.login({ identifier: squatter.email, password: newPassword });
    expect(login.result.case).toBe("tokens");
    expect(await count(`SELECT count(*)::int AS n FROM totp_credentials WHERE user_id = $1`, [squatter.userId])).toBe(0);
    const reset = (await auditRows(t.db, squatter.userId)).find((e) => e.type === "PASSWORD_RESET");
    expect(reset?.details).toMatchObject({ contact_claimed: "true", discarded: "password,totp,backup_codes" });
  }));

  it("pre-hijacking: the squatter's own phone, even verified, goes with the claim, so it signs in and resets nothing", withApi(async (api) => {
    // The squatter signs up with the owner's address and their own phone, and proves the phone.
    const email = uniqueEmail(`hijack-phone-${name}`);
    const phone = uniquePhone();
    const signedUp = await api.auth.signUp({ email, phone, password: PASSWORD });
    const squatterAccess = signedUp.tokens!.accessToken;
    await api.otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.VERIFY_CONTACT }, bearer(squatterAccess));
    await api.otp.verifyOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.VERIFY_CONTACT, code: t.outbox.lastCode(phone) }, bearer(squatterAccess));
    clock.advance(31_000);
    // A reset code for the phone, asked for before the claim, must die with it.
    await api.auth.requestPasswordReset({ channel: OtpChannel.SMS, destination: phone });
    const earlyReset = t.outbox.lastCode(phone);
    clock.advance(31_000);

    await api.otp.sendOtp({ channel: EMAIL, destination: email, purpose: OtpPurpose.LOGIN });
    const owner = await api.otp.verifyOtp({ channel: EMAIL, destination: email, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(email) });
    expect(owner.result.case).toBe("tokens");
    expect(owner.user).toMatchObject({ id: signedUp.user!.id, emailVerified: true, hasPassword: false, phone: "" });
    const claimed = (await auditRows(t.db, signedUp.user!.id)).find((e) => e.type === "CONTACT_VERIFIED" && e.details.contact_claimed === "true");
    expect(claimed?.details).toMatchObject({ discarded: "password,phone" });

    // The early reset code resets nothing, and a code to the phone now signs in someone else.
    await expectError(api.auth.resetPassword({ channel: OtpChannel.SMS, destination: phone, code: earlyReset, newPassword: "the squatter's new passphrase" }), {
      code: Code.Unauthenticated,
      reason: "OTP_INVALID",
    });
    await api.otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN });
    const bySms = await api.otp.verifyOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(phone) });
    expect(bySms.newUser).toBe(true);
    expect(bySms.user?.id).not.toBe(signedUp.user!.id);
    clock.advance(31_000);
  }));

  it("a verified address keeps its factors through a reset", withApi(async (api) => {
    const account = await enrolled(api, uniqueEmail(`kept-${name}`));
    await verifyEmail(api, account.email, account.access);
    await api.auth.requestPasswordReset({ channel: EMAIL, destination: account.email });
    const newPassword = "another long passphrase";
    await api.auth.resetPassword({ channel: EMAIL, destination: account.email, code: t.outbox.lastCode(account.email), newPassword });
    const challenge = await challengeOf(api, account.email, newPassword);
    nextStep();
    await api.mfa.verifyMfa({ challengeToken: challenge, code: { case: "totpCode", value: totp(account.secret) } });
  }));

  it("wrong TOTP and backup codes on VerifyMfa, DisableTotp and RegenerateBackupCodes share one budget, and are audited", withApi(async (api) => {
    const account = await enrolled(api, uniqueEmail(`mfa-budget-${name}`));
    const me = bearer(account.access);
    let guesses = 0;
    // 8 on VerifyMfa (two challenges: each dies after 5 attempts) ...
    for (let c = 0; c < 2; c++) {
      const challenge = await challengeOf(api, account.email);
      for (let i = 0; i < 4; i++) {
        await expectError(api.mfa.verifyMfa({ challengeToken: challenge, code: { case: "totpCode", value: wrongTotp(account.secret, guesses++) } }), {
          code: Code.Unauthenticated,
          reason: "MFA_CODE_INVALID",
        });
      }
    }
    // ... 6 on DisableTotp with the right password (TOTP and backup-code form) and 6 on
    // RegenerateBackupCodes, with only an access token: none of them changes a credential.
    const before = await credentialRows(account.userId);
    for (let i = 0; i < 6; i++) {
      const code = i % 2 === 0 ? wrongTotp(account.secret, guesses++) : `wrong-${String(i).padStart(5, "0")}`.replace("-", "").slice(0, 10);
      await expectError(api.mfa.disableTotp({ password: PASSWORD, code }, me), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    }
    for (let i = 0; i < 6; i++) {
      await expectError(api.mfa.regenerateBackupCodes({ totpCode: wrongTotp(account.secret, guesses++) }, me), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    }
    expect(await credentialRows(account.userId)).toBe(before);
    expect(await limitHits(t.db, `mfa-fail:account:${account.userId}`)).toBe(MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR);

    // The budget is spent: every RPC refuses even the right code, before looking at it.
    nextStep();
    const challenge = await challengeOf(api, account.email);
    await t.expectNothingStored(async () => {
      const limited = await expectError(api.mfa.regenerateBackupCodes({ totpCode: totp(account.secret) }, me), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
      expect(retryDelayMs(limited)).toBeGreaterThan(0);
      await expectError(api.mfa.verifyMfa({ challengeToken: challenge, code: { case: "backupCode", value: account.backupCodes[0]! } }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    });
    await expectError(api.mfa.disableTotp({ password: PASSWORD, code: totp(account.secret) }, me), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(await limitHits(t.db, `mfa-fail:account:${account.userId}`)).toBe(MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR);

    const failed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "MFA_FAILED").map((e) => `${e.details.action}/${e.details.method}`);
    // (Sorted: the test clock stands still, so the rows share their time.)
    expect(failed.sort()).toEqual(
      [
        ...Array<string>(8).fill("verify_mfa/totp"),
        ...["totp", "backup", "totp", "backup", "totp", "backup"].map((m) => `disable_totp/${m}`),
        ...Array<string>(6).fill("regenerate_backup_codes/totp"),
      ].sort(),
    );
  }));

  it("wrong codes on ConfirmTotp count in the same budget, and are audited", withApi(async (api) => {
    const signedUp = await api.auth.signUp({ email: uniqueEmail(`confirm-budget-${name}`), password: PASSWORD });
    const me = bearer(signedUp.tokens!.accessToken);
    const setup = await api.mfa.setupTotp({}, me);
    for (let i = 0; i < MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR; i++) {
      await expectError(api.mfa.confirmTotp({ code: wrongTotp(setup.secret, i) }, me), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    }
    await t.expectNothingStored(() =>
      expectError(api.mfa.confirmTotp({ code: totp(setup.secret) }, me), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" }),
    );
    expect((await api.mfa.getMfaStatus({}, me)).totpEnabled).toBe(false);
    const failed = (await auditRows(t.db, signedUp.user!.id)).filter((e) => e.type === "MFA_FAILED");
    expect(failed.map((e) => e.details)).toEqual(Array(MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR).fill({ method: "totp", action: "confirm_totp" }));
  }));

  it("wrong passwords on ChangePassword, DeleteAccount and DisableTotp count in Login's failure limits, and are audited", withApi(async (api) => {
    const account = await enrolled(api, uniqueEmail(`pwd-budget-${name}`));
    const me = bearer(account.access);
    const before = await credentialRows(account.userId);
    const wrong = { code: Code.PermissionDenied, reason: "WRONG_PASSWORD" };
    await expectError(api.auth.changePassword({ currentPassword: WRONG_PASSWORD, newPassword: "a new long passphrase" }, me), wrong);
    await expectError(api.auth.changePassword({ currentPassword: WRONG_PASSWORD, newPassword: "a new long passphrase" }, me), wrong);
    await expectError(api.auth.deleteAccount({ password: WRONG_PASSWORD }, me), wrong);
    await expectError(api.auth.deleteAccount({ password: WRONG_PASSWORD }, me), wrong);
    await expectError(api.mfa.disableTotp({ password: WRONG_PASSWORD, code: totp(account.secret) }, me), wrong);
    expect(await credentialRows(account.userId)).toBe(before);

    // Five failures from this address: the backoff of Login now applies to every password check,
    // refused before the password is looked at, the right one too.
    await t.expectNothingStored(async () => {
      const limited = await expectError(api.auth.changePassword({ currentPassword: WRONG_PASSWORD, newPassword: "a new long passphrase" }, me), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
      expect(retryDelayMs(limited)).toBe(1_000);
      await expectError(api.auth.deleteAccount({ password: PASSWORD }, me), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
      await expectError(api.mfa.disableTotp({ password: PASSWORD, code: totp(account.secret) }, me), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
      await expectError(api.auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    });
    clock.advance(1_000);
    await challengeOf(api, account.email);

    const failed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGIN_FAILED");
    expect(failed.map((e) => `${e.details.method}/${e.details.cause}`).sort()).toEqual(
      ["change_password", "change_password", "delete_account", "delete_account", "disable_totp"].map((cause) => `pwd/${cause}`),
    );
    expect(failed.every((e) => e.session_id !== null)).toBe(true);
  }));

  it("an MFA challenge won before a contact is verified, or before ChangePassword, ResetPassword or RegenerateBackupCodes, is refused after it", withApi(async (api) => {
    const account = await enrolled(api, uniqueEmail(`stale-challenge-${name}`));
    const answer = (challenge: string) => api.mfa.verifyMfa({ challengeToken: challenge, code: { case: "totpCode", value: totp(account.secret) } });
    const refused = { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" };

    // A contact verified is a contact change (and makes the reset below claim nothing).
    const beforeVerify = await challengeOf(api, account.email);
    await verifyEmail(api, account.email, account.access);
    nextStep();
    await expectError(answer(beforeVerify), refused);

    let password = PASSWORD;
    const beforeChange = await challengeOf(api, account.email, password);
    await api.auth.changePassword({ currentPassword: password, newPassword: (password = "changed passphrase one") }, bearer(account.access));
    nextStep();
    await expectError(answer(beforeChange), refused);

    const beforeReset = await challengeOf(api, account.email, password);
    await api.auth.requestPasswordReset({ channel: EMAIL, destination: account.email });
    await api.auth.resetPassword({ channel: EMAIL, destination: account.email, code: t.outbox.lastCode(account.email), newPassword: (password = "reset passphrase two") });
    nextStep();
    await expectError(answer(beforeReset), refused);

    const fresh = await challengeOf(api, account.email, password);
    const signedIn = await answer(fresh); // the code was right: only the challenges were stale
    const beforeRegenerate = await challengeOf(api, account.email, password);
    nextStep();
    await api.mfa.regenerateBackupCodes({ totpCode: totp(account.secret) }, bearer(signedIn.tokens!.accessToken));
    nextStep();
    await expectError(answer(beforeRegenerate), refused);
    await answer(await challengeOf(api, account.email, password));
  }));

  it("a reset code sent before a change of password or of a factor is refused after it", withApi(async (api) => {
    const email = uniqueEmail(`stale-reset-${name}`);
    const signedUp = await api.auth.signUp({ email, password: PASSWORD });
    const me = bearer(signedUp.tokens!.accessToken);
    await api.auth.requestPasswordReset({ channel: EMAIL, destination: email });
    const code = t.outbox.lastCode(email);
    await api.auth.changePassword({ currentPassword: PASSWORD, newPassword: "changed passphrase" }, me);
    await expectError(api.auth.resetPassword({ channel: EMAIL, destination: email, code, newPassword: "the attacker's passphrase" }), {
      code: Code.Unauthenticated,
      reason: "OTP_INVALID",
    });
    const login = await api.auth.login({ identifier: email, password: "changed passphrase" });
    expect(login.result.case).toBe("tokens");

    // Turning TOTP on is a change of factor: the same.
    clock.advance(31_000);
    await api.auth.requestPasswordReset({ channel: EMAIL, destination: email });
    const second = t.outbox.lastCode(email);
    const setup = await api.mfa.setupTotp({}, me);
    nextStep();
    await api.mfa.confirmTotp({ code: totp(setup.secret) }, me);
    await expectError(api.auth.resetPassword({ channel: EMAIL, destination: email, code: second, newPassword: "the attacker's passphrase" }), {
      code: Code.Unauthenticated,
      reason: "OTP_INVALID",
    });
  }));

  it("of 10 concurrent ChangePassword calls with the same current password exactly one succeeds", withApi(async (api) => {
    const email = uniqueEmail(`race-${name}`);
    const signedUp = await api.auth.signUp({ email, password: PASSWORD });
    const me = bearer(signedUp.tokens!.accessToken);
    const candidates = Array.from({ length: 10 }, (_, i) => `racing passphrase number ${i}`);
    const results = await Promise.allSettled(candidates.map((newPassword) => api.auth.changePassword({ currentPassword: PASSWORD, newPassword }, me)));
    const winners = candidates.filter((_, i) => results[i]!.status === "fulfilled");
    expect(winners).toHaveLength(1);
    // The stored password is the winner's, and only one change was recorded.
    clock.advance(3_600_000);
    expect((await api.auth.login({ identifier: email, password: winners[0]! })).result.case).toBe("tokens");
    for (const loser of candidates.filter((c) => c !== winners[0]).slice(0, 2)) {
      await expectError(api.auth.login({ identifier: email, password: loser }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    }
    expect((await auditRows(t.db, signedUp.user!.id)).filter((e) => e.type === "PASSWORD_CHANGED")).toHaveLength(1);
  }));
});

it("of 10 concurrent ChangePassword calls from 10 addresses (no limit in the way), one succeeds and nine find the password changed", async () => {
  clock.advance(3_600_000);
  const signedUp = await t.clients("grpc").auth.signUp({ email: uniqueEmail("race-domain"), password: PASSWORD });
  const caller = await t.app.services.callers.authenticate(signedUp.tokens!.accessToken);
  const accounts = t.app.services.accounts;
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      accounts.changePassword(caller, PASSWORD, `racing passphrase number ${i}`, { ip: `198.51.100.${i + 1}`, userAgent: "test" }).then(
        () => "OK",
        (err: unknown) => (err instanceof AppError ? err.reason : String(err)),
      ),
    ),
  );
  expect(results.filter((r) => r === "OK")).toHaveLength(1);
  expect(results.filter((r) => r === "WRONG_PASSWORD")).toHaveLength(9);
});

describe("ResetPassword hashes nothing before the limit and the code are checked", () => {
  // The hasher's own counter (identity_password_hashing_total) shows whether a call hashed.
  const hashing = setupService({ env: { ...CHEAP_HASHING, OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "3" } });

  async function hashes(): Promise<number> {
    const body = await (await fetch(hashing.metricsUrl)).text();
    const line = body.split("\n").find((l) => l.startsWith('identity_password_hashing_total{result="hash"}'));
    return line === undefined ? 0 : Number(line.split(" ").pop());
  }

  it("a wrong code is OTP_INVALID and a limited call RATE_LIMITED, both without hashing the new password", async () => {
    const { auth } = hashing.clients("grpc");
    const destination = uniqueEmail("reset-order");
    await auth.signUp({ email: destination, password: PASSWORD });
    await auth.requestPasswordReset({ channel: EMAIL, destination });
    const reset = (code: string) => auth.resetPassword({ channel: EMAIL, destination, code, newPassword: "a new long passphrase" });
    const right = hashing.outbox.lastCode(destination);
    const wrong = right === "000000" ? "111111" : "000000";
    const before = await hashes();
    await expectError(reset(wrong), { code: Code.Unauthenticated, reason: "OTP_INVALID" });
    await expectError(reset(wrong), { code: Code.Unauthenticated, reason: "OTP_INVALID" });
    expect(await hashes(), "wrong codes hash nothing").toBe(before);
    // The right code hashes once (so the counter can tell), and gives its limit slot back.
    await reset(right);
    expect(await hashes()).toBe(before + 1);
    expect(await limitHits(hashing.db, "otp-verify-fail:")).toBe(2);
    await expectError(reset(right), { code: Code.Unauthenticated, reason: "OTP_INVALID" }); // spent
    await expectError(reset(wrong), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(await hashes(), "spent and limited calls hash nothing").toBe(before + 1);
  });
});
