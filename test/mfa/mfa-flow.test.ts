// The TOTP second factor end to end over every transport, with a clock the test moves.
import { Code } from "@connectrpc/connect";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { AuditEventType } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaMethod, OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const PASSWORD = "a long enough passphrase";
const clock = new ManualClock(new Date("2026-11-21T12:00:10Z"));
const t = setupService({ clock });

const totp = (secret: string) => generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const nextStep = () => clock.advance(30_000);

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const [row] = (await t.db.query(sql, params)) as Array<{ n: number }>;
  return row!.n;
}

describe.each(transportNames)("MFA over %s", (name) => {
  let counter = 0;
  const clients = () => t.clients(name);

  /** A signed-up account with TOTP enabled; returns its secret and backup codes. */
  async function enrolled() {
    const { auth, mfa } = clients();
    const email = `mfa-${name}-${++counter}@example.com`;
    const signUp = await auth.signUp({ email, password: PASSWORD });
    const access = signUp.tokens!.accessToken;
    const setup = await mfa.setupTotp({}, bearer(access));
    nextStep();
    const { backupCodes } = await mfa.confirmTotp({ code: totp(setup.secret) }, bearer(access));
    return { email, access, secret: setup.secret, backupCodes, userId: signUp.user!.id };
  }

  async function challenge(email: string) {
    const { auth } = clients();
    const login = await auth.login({ identifier: email, password: PASSWORD });
    expect(login.result.case).toBe("mfaChallenge");
    if (login.result.case !== "mfaChallenge") throw new Error("no challenge");
    return login.result.value;
  }

  it("sets up TOTP with a scannable QR code, and confirms it with a current code", async () => {
    const { auth, mfa } = clients();
    const email = `setup-${name}@example.com`;
    const access = (await auth.signUp({ email, password: PASSWORD })).tokens!.accessToken;
    const setup = await mfa.setupTotp({}, bearer(access));
    expect(setup.secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits, base32
    const url = new URL(setup.otpauthUrl);
    expect(url.protocol).toBe("otpauth:");
    expect(url.searchParams.get("issuer")).toBe("grpc-identity");
    expect(url.searchParams.get("secret")).toBe(setup.secret);
    expect(decodeURIComponent(url.pathname)).toContain(email);
    expect(setup.qrCodeDataUrl).toMatch(/^data:image\/png;base64,/);
    const png = Buffer.from(setup.qrCodeDataUrl.split(",")[1]!, "base64");
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const sealed = (await t.db.query(`SELECT secret_sealed FROM totp_credentials c JOIN users u ON u.id = c.user_id WHERE u.email = $1`, [email])) as Array<{ secret_sealed: Buffer }>;
    expect(sealed[0]!.secret_sealed.toString("latin1")).not.toContain(setup.secret);

    expect((await mfa.getMfaStatus({}, bearer(access))).totpEnabled).toBe(false);
    const wrong = String((Number(totp(setup.secret)) + 1) % 1_000_000).padStart(6, "0");
    await expectError(mfa.confirmTotp({ code: wrong }, bearer(access)), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    await expectError(mfa.confirmTotp({ code: "12ab" }, bearer(access)), { code: Code.InvalidArgument, fields: ["code"] });
    expect(await count(`SELECT count(*)::int AS n FROM users WHERE email = $1 AND mfa_enabled_at IS NOT NULL`, [email])).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM backup_codes b JOIN users u ON u.id = b.user_id WHERE u.email = $1`, [email])).toBe(0);

    nextStep();
    const { backupCodes } = await mfa.confirmTotp({ code: totp(setup.secret) }, bearer(access));
    expect(backupCodes).toHaveLength(10);
    expect(new Set(backupCodes).size).toBe(10);
    const status = await mfa.getMfaStatus({}, bearer(access));
    expect(status.totpEnabled).toBe(true);
    expect(status.backupCodesRemaining).toBe(10);
    const stored = (await t.db.query(`SELECT code_hash FROM backup_codes b JOIN users u ON u.id = b.user_id WHERE u.email = $1`, [email])) as Array<{ code_hash: Buffer }>;
    expect(stored.map((r) => r.code_hash.toString("hex"))).not.toContain(backupCodes[0]);
    await expectError(mfa.setupTotp({}, bearer(access)), { code: Code.FailedPrecondition, reason: "MFA_ALREADY_ENABLED" });
  });

  it("asks for the second factor at login and answers it with TOTP; amr holds mfa and pwd", async () => {
    const account = await enrolled();
    const sessionsBefore = await count(`SELECT count(*)::int AS n FROM sessions WHERE user_id = $1`, [account.userId]);
    const ch = await challenge(account.email);
    expect(ch.methods).toEqual([MfaMethod.TOTP, MfaMethod.BACKUP_CODE]);
    expect(Number(ch.expireTime!.seconds) * 1000 - clock.now().getTime()).toBeLessThanOrEqual(300_000);
    expect(await count(`SELECT count(*)::int AS n FROM sessions WHERE user_id = $1`, [account.userId])).toBe(sessionsBefore);

    // The challenge is not an access token.
    const asAccess = await t.verify(ch.challengeToken);
    expect(asAccess.active).toBe(false);
    await expectError(clients().auth.whoAmI({}, bearer(ch.challengeToken)), { code: Code.Unauthenticated });

    nextStep();
    const { mfa, auth } = clients();
    const done = await mfa.verifyMfa({ challengeToken: ch.challengeToken, code: { case: "totpCode", value: totp(account.secret) } });
    const me = await auth.whoAmI({}, bearer(done.tokens!.accessToken));
    expect(me.amr).toEqual(expect.arrayContaining(["pwd", "mfa"]));
    const verified = await t.verify(done.tokens!.accessToken);
    expect(verified.active).toBe(true);
    expect(verified.amr).toEqual(expect.arrayContaining(["pwd", "mfa"]));

    // The challenge is spent, and the same TOTP code is refused on a new challenge.
    await expectError(mfa.verifyMfa({ challengeToken: ch.challengeToken, code: { case: "totpCode", value: totp(account.secret) } }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" });
    const again = await challenge(account.email);
    await expectError(mfa.verifyMfa({ challengeToken: again.challengeToken, code: { case: "totpCode", value: totp(account.secret) } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    nextStep();
    await mfa.verifyMfa({ challengeToken: again.challengeToken, code: { case: "totpCode", value: totp(account.secret) } });
  });

  it("asks for the second factor after a one-time-code login too", async () => {
    const account = await enrolled();
    const otp = t.clients(name).otp;
    // The owner proves the address first: a code proving a never-verified address would claim
    // the account and discard the factors set up before (pre-hijacking, test/security/credentials.test.ts).
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.VERIFY_CONTACT }, bearer(account.access));
    await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.VERIFY_CONTACT, code: t.outbox.lastCode(account.email) }, bearer(account.access));
    clock.advance(31_000); // past the resend cooldown of this address
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN });
    const code = t.outbox.lastCode(account.email);
    const sessionsBefore = await count(`SELECT count(*)::int AS n FROM sessions WHERE user_id = $1`, [account.userId]);
    const verified = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN, code });
    expect(verified.result.case).toBe("mfaChallenge");
    expect(await count(`SELECT count(*)::int AS n FROM sessions WHERE user_id = $1`, [account.userId])).toBe(sessionsBefore);
    if (verified.result.case !== "mfaChallenge") throw new Error("no challenge");
    nextStep();
    const { mfa, auth } = clients();
    const done = await mfa.verifyMfa({ challengeToken: verified.result.value.challengeToken, code: { case: "totpCode", value: totp(account.secret) } });
    const me = await auth.whoAmI({}, bearer(done.tokens!.accessToken));
    expect(me.amr).toEqual(expect.arrayContaining(["otp", "mfa"]));
    expect(me.amr).not.toContain("pwd");
  });

  it("accepts one TOTP code once when it is used concurrently", async () => {
    const account = await enrolled();
    nextStep();
    const code = totp(account.secret);
    const challenges = await Promise.all([1, 2, 3, 4].map(() => challenge(account.email)));
    const { mfa } = clients();
    const results = await Promise.allSettled(challenges.map((c) => mfa.verifyMfa({ challengeToken: c.challengeToken, code: { case: "totpCode", value: code } })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  });

  it("refuses an expired challenge and one whose attempts are used up", async () => {
    const account = await enrolled();
    const { mfa } = clients();
    const expired = await challenge(account.email);
    clock.advance(301_000);
    await expectError(mfa.verifyMfa({ challengeToken: expired.challengeToken, code: { case: "totpCode", value: totp(account.secret) } }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" });

    const exhausted = await challenge(account.email);
    const wrong = String((Number(totp(account.secret)) + 7) % 1_000_000).padStart(6, "0");
    for (let i = 0; i < 5; i++) {
      await expectError(mfa.verifyMfa({ challengeToken: exhausted.challengeToken, code: { case: "totpCode", value: wrong } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    }
    nextStep();
    await expectError(mfa.verifyMfa({ challengeToken: exhausted.challengeToken, code: { case: "totpCode", value: totp(account.secret) } }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" });
    await expectError(mfa.verifyMfa({ challengeToken: "mfa_unknown", code: { case: "totpCode", value: "123456" } }), { code: Code.Unauthenticated, reason: "MFA_CHALLENGE_INVALID" });
    await expectError(mfa.verifyMfa({ challengeToken: exhausted.challengeToken, code: { case: undefined } }), { code: Code.InvalidArgument, fields: ["totp_code"] });
  });

  it("lets a person in with a backup code, once", async () => {
    const account = await enrolled();
    const { mfa } = clients();
    const first = await challenge(account.email);
    const done = await mfa.verifyMfa({ challengeToken: first.challengeToken, code: { case: "backupCode", value: account.backupCodes[0]! } });
    expect((await mfa.getMfaStatus({}, bearer(done.tokens!.accessToken))).backupCodesRemaining).toBe(9);
    const second = await challenge(account.email);
    await expectError(mfa.verifyMfa({ challengeToken: second.challengeToken, code: { case: "backupCode", value: account.backupCodes[0]! } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    await mfa.verifyMfa({ challengeToken: second.challengeToken, code: { case: "backupCode", value: account.backupCodes[1]!.toUpperCase() } });
  });

  it("regenerates backup codes with a TOTP code; the old ones stop working", async () => {
    const account = await enrolled();
    const { mfa } = clients();
    nextStep();
    const { backupCodes } = await mfa.regenerateBackupCodes({ totpCode: totp(account.secret) }, bearer(account.access));
    expect(backupCodes).toHaveLength(10);
    const ch = await challenge(account.email);
    await expectError(mfa.verifyMfa({ challengeToken: ch.challengeToken, code: { case: "backupCode", value: account.backupCodes[2]! } }), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    await mfa.verifyMfa({ challengeToken: ch.challengeToken, code: { case: "backupCode", value: backupCodes[0]! } });
  });

  it("disables TOTP with the password and a code; login then needs no second factor", async () => {
    const account = await enrolled();
    const { mfa, auth } = clients();
    nextStep();
    await expectError(mfa.disableTotp({ password: "wrong password here", code: totp(account.secret) }, bearer(account.access)), { code: Code.PermissionDenied, reason: "WRONG_PASSWORD" });
    await expectError(mfa.disableTotp({ password: PASSWORD, code: "000000" === totp(account.secret) ? "111111" : "000000" }, bearer(account.access)), { code: Code.Unauthenticated, reason: "MFA_CODE_INVALID" });
    expect((await mfa.getMfaStatus({}, bearer(account.access))).totpEnabled).toBe(true);
    await mfa.disableTotp({ password: PASSWORD, code: totp(account.secret) }, bearer(account.access));
    expect((await mfa.getMfaStatus({}, bearer(account.access))).totpEnabled).toBe(false);
    const login = await auth.login({ identifier: account.email, password: PASSWORD });
    expect(login.result.case).toBe("tokens");
    await expectError(mfa.disableTotp({ password: PASSWORD, code: "123456" }, bearer(account.access)), { code: Code.FailedPrecondition, reason: "MFA_NOT_ENABLED" });

    const activity = await auth.listActivity({}, bearer(account.access));
    const types = activity.events.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining([AuditEventType.MFA_ENABLED, AuditEventType.MFA_FAILED, AuditEventType.MFA_DISABLED]));
  });
});

it("a challenge is not an access token, whatever it is presented as", async () => {
  const res = await t.verify("mfa_abc");
  expect(res.reason).toBe(InactiveReason.MALFORMED);
});
