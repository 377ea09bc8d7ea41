// Every abuse path of one-time codes, refused with the right code: expiry (on the service's
// clock), attempt exhaustion, replay, resend cooldown, per-destination and per-IP caps,
// concurrent checks of one code, invalid destinations, and answers that do not tell whether
// an account owns a destination.
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { signUp, uniqueEmail, uniquePhone, violationReasons, type OtpClient } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { wrongCode } from "../support/outbox.js";
import { setupService, withService } from "../support/setup.js";

const SMS = OtpChannel.SMS;
const EMAIL = OtpChannel.EMAIL;
const LOGIN = OtpPurpose.LOGIN;
const CHEAP_HASHING = { ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" };

const clock = new ManualClock();
const t = setupService({
  clock,
  env: { ...CHEAP_HASHING, OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000", OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "10000" },
});
const { otp, auth } = t.clients("grpc");
const { otp: webOtp } = t.clients("grpc-web");

async function userCount(db = t.db): Promise<number> {
  return ((await db.query(`SELECT count(*)::int AS n FROM users`)) as Array<{ n: number }>)[0]!.n;
}

async function sendLogin(client: OtpClient, channel: OtpChannel, destination: string) {
  return client.sendOtp({ channel, destination, purpose: LOGIN });
}

describe("codes", () => {
  it("expire after OTP_TTL_SECONDS on the service clock", async () => {
    const phone = uniquePhone();
    await sendLogin(otp, SMS, phone);
    const code = t.outbox.lastCode(phone);
    clock.advance(300_000);
    const users = await userCount();
    for (const client of [otp, webOtp]) {
      await expectError(client.verifyOtp({ channel: SMS, destination: phone, purpose: LOGIN, code }), { code: Code.Unauthenticated, reason: "OTP_EXPIRED" });
    }
    expect(await userCount()).toBe(users);
  });

  it("die after 5 wrong attempts, even for the right code afterwards", async () => {
    const email = uniqueEmail("attempts");
    await sendLogin(otp, EMAIL, email);
    const code = t.outbox.lastCode(email);
    for (let i = 0; i < 4; i++) {
      await expectError(otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: wrongCode(code) }), {
        code: Code.Unauthenticated,
        reason: "OTP_INVALID",
      });
    }
    await expectError(webOtp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: wrongCode(code) }), {
      code: Code.Unauthenticated,
      reason: "OTP_ATTEMPTS_EXHAUSTED",
    });
    await expectError(otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code }), {
      code: Code.Unauthenticated,
      reason: "OTP_ATTEMPTS_EXHAUSTED",
    });
    const [row] = (await t.db.query(`SELECT attempts, consumed_at, code_hash FROM otp_codes WHERE destination = $1`, [email])) as Array<{
      attempts: number;
      consumed_at: Date | null;
      code_hash: Buffer;
    }>;
    expect(row).toMatchObject({ attempts: 5, consumed_at: null });
    // Stored only as a keyed hash.
    expect(row!.code_hash).toHaveLength(32);
    expect(row!.code_hash.toString("hex")).not.toContain(Buffer.from(code).toString("hex"));

    // A new code (after the cooldown) starts afresh.
    clock.advance(30_000);
    await sendLogin(otp, EMAIL, email);
    const fresh = await otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: t.outbox.lastCode(email) });
    expect(fresh.newUser).toBe(true);
  });

  it("are single use: a replayed code is refused on every transport", async () => {
    const phone = uniquePhone();
    await sendLogin(webOtp, SMS, phone);
    const code = t.outbox.lastCode(phone);
    await webOtp.verifyOtp({ channel: SMS, destination: phone, purpose: LOGIN, code });
    for (const client of [otp, webOtp]) {
      await expectError(client.verifyOtp({ channel: SMS, destination: phone, purpose: LOGIN, code }), { code: Code.Unauthenticated, reason: "OTP_INVALID" });
    }
  });

  it("checked concurrently with the right code: exactly one check succeeds", async () => {
    const phone = uniquePhone();
    await sendLogin(otp, SMS, phone);
    const code = t.outbox.lastCode(phone);
    const request = { channel: SMS, destination: phone, purpose: LOGIN, code };
    const results = await Promise.allSettled([...Array(6)].flatMap(() => [otp.verifyOtp(request), webOtp.verifyOtp(request)]));
    const won = results.filter((r) => r.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.Unauthenticated);
    }
    const [users] = (await t.db.query(`SELECT count(*)::int AS n FROM users WHERE phone = $1`, [phone])) as Array<{ n: number }>;
    expect(users!.n).toBe(1);
    const [sessions] = (await t.db.query(`SELECT count(*)::int AS n FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.phone = $1`, [
      phone,
    ])) as Array<{ n: number }>;
    expect(sessions!.n).toBe(1);
  });
});

describe("sending", () => {
  it("has a resend cooldown of 30 s (RESOURCE_EXHAUSTED with RetryInfo); a resend replaces the code", async () => {
    const email = uniqueEmail("cooldown");
    const first = await sendLogin(otp, EMAIL, email);
    const oldCode = t.outbox.lastCode(email);
    expect(timestampDate(first.resendTime!).getTime()).toBe(clock.now().getTime() + 30_000);
    const refused = await expectError(sendLogin(webOtp, EMAIL, email), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(retryDelayMs(refused)).toBe(30_000);
    clock.advance(29_000);
    expect(retryDelayMs(await expectError(sendLogin(otp, EMAIL, email), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" }))).toBe(1_000);
    expect(t.outbox.messages(email)).toHaveLength(1);
    // Counted by method and reason, one series per dimension value (not "SendOtp:RATE_LIMITED").
    const metrics = await (await fetch(t.metricsUrl)).text();
    expect(metrics).toMatch(/^identity_rate_limited_total\{method="SendOtp",reason="RATE_LIMITED"\} [2-9]\d*$/m);

    clock.advance(1_000);
    await sendLogin(otp, EMAIL, email);
    const newCode = t.outbox.lastCode(email);
    if (newCode !== oldCode) {
      await expectError(otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: oldCode }), { code: Code.Unauthenticated, reason: "OTP_INVALID" });
    }
    await otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: newCode });
  });

  it("caps each destination at 5 codes an hour, in any hour", async () => {
    const phone = uniquePhone();
    const started = clock.now().getTime();
    for (let i = 0; i < 5; i++) {
      const sent = await sendLogin(otp, SMS, phone);
      if (i === 4) expect(timestampDate(sent.resendTime!).getTime()).toBe(started + 3_600_000);
      clock.advance(30_000);
    }
    const refused = await expectError(sendLogin(webOtp, SMS, phone), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(retryDelayMs(refused)).toBe(started + 3_600_000 - clock.now().getTime());
    // Other purposes share the destination's cap.
    await expectError(auth.requestPasswordReset({ channel: SMS, destination: phone }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(t.outbox.messages(phone)).toHaveLength(5);
    clock.set(new Date(started + 3_600_001));
    await sendLogin(otp, SMS, phone);
  });

  it("refuses invalid destinations and codes as INVALID_ARGUMENT, sending and storing nothing", async () => {
    await t.expectNothingStored(async () => {
      const cases: Array<[() => Promise<unknown>, Record<string, string>]> = [
        [() => otp.sendOtp({ channel: SMS, destination: "12345", purpose: LOGIN }), { destination: "INVALID_PHONE" }],
        [() => otp.sendOtp({ channel: SMS, destination: "+1 415 555", purpose: LOGIN }), { destination: "INVALID_PHONE" }],
        [() => otp.sendOtp({ channel: SMS, destination: "ada@example.com", purpose: LOGIN }), { destination: "INVALID_PHONE" }],
        [() => webOtp.sendOtp({ channel: EMAIL, destination: "not-an-email", purpose: LOGIN }), { destination: "INVALID_EMAIL" }],
        [() => webOtp.sendOtp({ channel: EMAIL, destination: "+14155550123", purpose: LOGIN }), { destination: "INVALID_EMAIL" }],
        [() => otp.sendOtp({ channel: EMAIL, destination: "  ", purpose: LOGIN }), { destination: "REQUIRED" }],
        [() => otp.sendOtp({ destination: "ada@example.com", purpose: LOGIN }), { channel: "REQUIRED" }],
        [() => otp.sendOtp({ channel: EMAIL, destination: "ada@example.com" }), { purpose: "INVALID_PURPOSE" }],
        [() => otp.verifyOtp({ channel: SMS, destination: "+1 415", purpose: LOGIN, code: "12ab56" }), { destination: "INVALID_PHONE", code: "INVALID_CODE" }],
        [() => otp.verifyOtp({ channel: EMAIL, destination: "ada@example.com", purpose: LOGIN, code: "" }), { code: "REQUIRED" }],
        [() => auth.requestPasswordReset({ channel: EMAIL, destination: "ada@" }), { destination: "INVALID_EMAIL" }],
        [
          () => auth.resetPassword({ channel: SMS, destination: "+999", code: "1234567", newPassword: "short" }),
          { destination: "INVALID_PHONE", code: "INVALID_CODE", new_password: "PASSWORD_TOO_SHORT" },
        ],
      ];
      for (const [call, fields] of cases) {
        const error = await expectError(call(), { code: Code.InvalidArgument, reason: "INVALID_ARGUMENT" });
        expect(violationReasons(error)).toEqual(fields);
      }
    });
  });
});

describe("answers do not tell whether an account owns the destination", () => {
  function shape(sent: { expireTime?: { seconds: bigint }; resendTime?: { seconds: bigint } }) {
    const now = BigInt(Math.floor(clock.now().getTime() / 1000));
    return { expire: sent.expireTime!.seconds - now, resend: sent.resendTime!.seconds - now };
  }

  function errorShape(error: ConnectError) {
    return { code: error.code, message: error.rawMessage, details: error.details.map((d) => ("desc" in d ? d.desc.typeName : d.type)) };
  }

  it("SendOtp, RequestPasswordReset and failed checks answer alike", async () => {
    const account = await signUp(auth, "enum-known");
    const unknown = uniqueEmail("enum-unknown");
    for (const email of [account.email, unknown]) await auth.requestPasswordReset({ channel: EMAIL, destination: email });
    const [known, stranger] = [account.email, unknown].map((email) => t.outbox.messages(email).at(-1)!);
    expect(known!.text.replace(/\d{6}/, "CODE")).toBe(stranger!.text.replace(/\d{6}/, "CODE"));
    expect(known!.subject).toBe(stranger!.subject);

    const login = [account.email, unknown].map((destination) => ({ channel: EMAIL, destination, purpose: LOGIN }));
    clock.advance(30_000);
    const sent = [await otp.sendOtp(login[0]!), await otp.sendOtp(login[1]!)];
    expect(shape(sent[0]!)).toEqual(shape(sent[1]!));

    const wrong = await Promise.all(
      login.map((req) => expectError(otp.verifyOtp({ ...req, code: wrongCode(t.outbox.lastCode(req.destination)) }), { code: Code.Unauthenticated })),
    );
    expect(errorShape(wrong[0]!)).toEqual(errorShape(wrong[1]!));
    const resets = await Promise.all(
      [account.email, unknown].map((destination) =>
        expectError(auth.resetPassword({ channel: EMAIL, destination, code: "000000", newPassword: "another passphrase" }), { code: Code.Unauthenticated }),
      ),
    );
    expect(errorShape(resets[0]!)).toEqual(errorShape(resets[1]!));
  });

  it("with sign-up by code off, an unknown destination's right code answers like a wrong one", async () => {
    await withService({ env: { ...CHEAP_HASHING, OTP_SIGN_UP: "false" } }, async (closed) => {
      const { otp: client, auth } = closed.clients("grpc");
      const account = await signUp(auth, "closed");
      const unknown = uniqueEmail("closed-unknown");
      await client.sendOtp({ channel: EMAIL, destination: unknown, purpose: LOGIN });
      const users = await userCount(closed.db);
      const rightButUnknown = await expectError(
        client.verifyOtp({ channel: EMAIL, destination: unknown, purpose: LOGIN, code: closed.outbox.lastCode(unknown) }),
        { code: Code.Unauthenticated, reason: "OTP_INVALID" },
      );
      await client.sendOtp({ channel: EMAIL, destination: account.email, purpose: LOGIN });
      const wrong = await expectError(
        client.verifyOtp({ channel: EMAIL, destination: account.email, purpose: LOGIN, code: wrongCode(closed.outbox.lastCode(account.email)) }),
        { code: Code.Unauthenticated, reason: "OTP_INVALID" },
      );
      expect(errorShape(rightButUnknown)).toEqual(errorShape(wrong));
      expect(await userCount(closed.db)).toBe(users);
      // Existing accounts still sign in by code.
      const signedIn = await client.verifyOtp({ channel: EMAIL, destination: account.email, purpose: LOGIN, code: closed.outbox.lastCode(account.email) });
      expect(signedIn).toMatchObject({ newUser: false, user: { id: account.userId } });
    });
  });
});

describe("per client address", () => {
  const strict = setupService({ env: { ...CHEAP_HASHING, OTP_MAX_SENDS_PER_IP_PER_HOUR: "3", OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "3" } });
  const { otp: client } = strict.clients("grpc-web");

  it("caps codes sent per hour across destinations (OTP_MAX_SENDS_PER_IP_PER_HOUR)", async () => {
    for (let i = 0; i < 3; i++) await client.sendOtp({ channel: EMAIL, destination: uniqueEmail("ip-cap"), purpose: LOGIN });
    await strict.expectNothingStored(async () => {
      const refused = await expectError(client.sendOtp({ channel: SMS, destination: uniquePhone(), purpose: LOGIN }), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
      expect(retryDelayMs(refused)).toBeGreaterThan(3_590_000);
    });
    // Another address is not affected; an IPv6 /64 counts as one address.
    const otpLogin = strict.app.services.otpLogin;
    for (const ip of ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::3"]) {
      await otpLogin.send("email", uniqueEmail("v6"), { ip, userAgent: "test" });
    }
    await expect(otpLogin.send("email", uniqueEmail("v6"), { ip: "2001:db8:1:2:abcd::1", userAgent: "test" })).rejects.toMatchObject({ reason: "RATE_LIMITED" });
    await otpLogin.send("email", uniqueEmail("v6"), { ip: "2001:db8:1:3::1", userAgent: "test" });
  });

  it("caps failed checks per hour across destinations; a successful check costs nothing", async () => {
    const otpLogin = strict.app.services.otpLogin;
    const ip = { ip: "198.51.100.20", userAgent: "test" };
    const emails = [uniqueEmail("guess-a"), uniqueEmail("guess-b"), uniqueEmail("guess-c")];
    for (const email of emails) await otpLogin.send("email", email, { ip: "198.51.100.1", userAgent: "test" });
    const codes = emails.map((email) => strict.outbox.lastCode(email));
    await expect(otpLogin.verify("email", emails[0]!, wrongCode(codes[0]!), ip)).rejects.toMatchObject({ reason: "OTP_INVALID" });
    await expect(otpLogin.verify("email", emails[1]!, wrongCode(codes[1]!), ip)).rejects.toMatchObject({ reason: "OTP_INVALID" });
    await otpLogin.verify("email", emails[0]!, codes[0]!, ip);
    await expect(otpLogin.verify("email", emails[2]!, wrongCode(codes[2]!), ip)).rejects.toMatchObject({ reason: "OTP_INVALID" });
    // Three failures: the fourth check is refused before the code is looked at, right or not.
    await expect(otpLogin.verify("email", emails[2]!, codes[2]!, ip)).rejects.toMatchObject({ reason: "RATE_LIMITED" });
    await otpLogin.verify("email", emails[2]!, codes[2]!, { ip: "198.51.100.21", userAgent: "test" });
  });
});
