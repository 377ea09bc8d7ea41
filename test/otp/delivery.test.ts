// The real providers: email through SMTP (nodemailer) to a real SMTP server, SMS through an HTTP
// webhook to a real HTTP server, each purpose end to end over every transport; and a provider
// that fails or cannot be reached answers UNAVAILABLE and costs the caller no quota.
import { createServer } from "node:net";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { bearer, login, signUp, uniqueEmail, uniquePhone } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { transportNames } from "../support/transports.js";
import { lastMailedCode, lastTextedCode, mailBody, mailHeader, startSmtpServer, startWebhook } from "../support/delivery-servers.js";
import { consoleMessages } from "../support/outbox.js";
import { prepared, setupService, withService } from "../support/setup.js";
import { limitHits } from "../support/stored-data.js";

const WEBHOOK_SECRET = "webhook-secret-for-tests";
const FROM = "Identity <no-reply@example.com>";
const clock = new ManualClock();

function providerEnv(smtpUrl: string, webhookUrl: string): Record<string, string> {
  return {
    OTP_EMAIL_PROVIDER: "smtp",
    SMTP_URL: smtpUrl,
    SMTP_FROM: FROM,
    OTP_SMS_PROVIDER: "webhook",
    SMS_WEBHOOK_URL: webhookUrl,
    SMS_WEBHOOK_SECRET: WEBHOOK_SECRET,
    OTP_DELIVERY_TIMEOUT_MS: "2000",
    OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000",
    ARGON2_MEMORY_KIB: "1024",
    ARGON2_ITERATIONS: "1",
  };
}

const smtp = prepared(startSmtpServer, (server) => server.close());
const webhook = prepared(startWebhook, (server) => server.close());
const t = setupService(() => ({ clock, env: providerEnv(smtp().url, webhook().url) }));

describe.each(transportNames)("real providers over %s", (name) => {
  const { otp, auth } = t.clients(name);

  it("email codes arrive by SMTP: sign-up, then a password reset", async () => {
    const email = uniqueEmail(`smtp-${name}`);
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN });
    const mail = smtp().mails.at(-1)!;
    expect(mail.to).toEqual([email]);
    expect(mail.from).toBe("no-reply@example.com");
    expect(mailHeader(mail, "Subject")).toBe("Your sign-in code");
    expect(mailBody(mail)).toMatch(/Your sign-in code is \d{6}\. It expires in 5 minutes/);
    const signedUp = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN, code: lastMailedCode(smtp(), email) });
    expect(signedUp).toMatchObject({ newUser: true, user: { email, emailVerified: true } });

    clock.advance(31_000);
    await auth.requestPasswordReset({ channel: OtpChannel.EMAIL, destination: email });
    expect(mailHeader(smtp().mails.at(-1)!, "Subject")).toBe("Your password reset code");
    await auth.resetPassword({ channel: OtpChannel.EMAIL, destination: email, code: lastMailedCode(smtp(), email), newPassword: "a password set by reset" });
    await login(auth, email, "a password set by reset");
    // Nothing went to the log.
    expect(consoleMessages(t.logLines)).toEqual([]);
  });

  it("SMS codes arrive by webhook: sign-up, then contact verification", async () => {
    const phone = uniquePhone();
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN });
    const call = webhook().calls.at(-1)!;
    expect(call).toMatchObject({ authorization: `Bearer ${WEBHOOK_SECRET}`, contentType: "application/json", body: { to: phone } });
    expect(Object.keys(call.body).sort()).toEqual(["text", "to"]);
    const signedUp = await otp.verifyOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN, code: lastTextedCode(webhook(), phone) });
    expect(signedUp.newUser).toBe(true);

    const other = uniquePhone();
    const account = await signUp(auth, `webhook-${name}`, { phone: other });
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: other, purpose: OtpPurpose.VERIFY_CONTACT }, bearer(account.tokens.accessToken));
    const verified = await otp.verifyOtp(
      { channel: OtpChannel.SMS, destination: other, purpose: OtpPurpose.VERIFY_CONTACT, code: lastTextedCode(webhook(), other) },
      bearer(account.tokens.accessToken),
    );
    expect(verified.user).toMatchObject({ phone: other, phoneVerified: true });
  });
});

describe("a provider that fails", () => {
  const { otp } = t.clients("grpc-web");

  it("answers UNAVAILABLE, logs it, keeps the earlier code and takes no quota", async () => {
    const email = uniqueEmail("smtp-down");
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN });
    const earlier = lastMailedCode(smtp(), email);
    clock.advance(31_000);
    const quota = async () => [
      await limitHits(t.db, `otp-send:dest:email:${email}`),
      await limitHits(t.db, "otp-send:ip:"),
    ];
    const hits = await quota();
    // Refunded hits leave the rate_limits rows tidied (expired hits pruned), not charged.
    const stored = async () => ({ ...(await t.fingerprint()), rate_limits: "" });
    const before = await stored();

    smtp().refuse = true;
    try {
      for (let i = 0; i < 6; i++) {
        await expectError(otp.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN }), {
          code: Code.Unavailable,
          reason: "OTP_DELIVERY_FAILED",
        });
      }
    } finally {
      smtp().refuse = false;
    }
    // Six failures, yet neither the cooldown nor the hourly cap of 5 moved; nothing was stored.
    expect(await quota()).toEqual(hits);
    expect(await stored()).toEqual(before);
    const failure = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.reason === "OTP_DELIVERY_FAILED");
    expect(failure).toHaveLength(6);
    expect(failure[0]).toMatchObject({ level: "error", status: "Unavailable" });
    expect(String(failure[0]!.detail)).toContain("smtp");

    // The earlier code still signs in; a new one can be sent at once (no cooldown started).
    const signedIn = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN, code: earlier });
    expect(signedIn.newUser).toBe(true);
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN });
  });

  it("a webhook answering 503 is UNAVAILABLE too", async () => {
    const phone = uniquePhone();
    webhook().status = 503;
    try {
      await expectError(otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN }), {
        code: Code.Unavailable,
        reason: "OTP_DELIVERY_FAILED",
      });
    } finally {
      webhook().status = 200;
    }
    expect(await limitHits(t.db, `otp-send:dest:sms:${phone}`)).toBe(0);
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.LOGIN });
  });

  it("providers that cannot be reached are UNAVAILABLE", async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    await withService({ env: providerEnv(`smtp://127.0.0.1:${port}`, `http://127.0.0.1:${port}/sms`) }, async (unreachable) => {
      const client = unreachable.clients("grpc").otp;
      for (const [channel, destination] of [[OtpChannel.EMAIL, uniqueEmail("nowhere")], [OtpChannel.SMS, uniquePhone()]] as const) {
        await expectError(client.sendOtp({ channel, destination, purpose: OtpPurpose.LOGIN }), { code: Code.Unavailable, reason: "OTP_DELIVERY_FAILED" });
      }
      expect(await limitHits(unreachable.db, "otp-send:")).toBe(0);
    });
  });
});
