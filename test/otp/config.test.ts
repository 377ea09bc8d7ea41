// Configuration of one-time codes, providers and login limits: defaults, bounds, and the
// console provider refused in production (by the config and by the real process at start).
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { uniqueEmail, uniquePhone } from "../support/accounts.js";
import { createTestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { spawnServiceProcess } from "../support/process.js";
import { TEST_KEK, TEST_SERVICE_KEYS } from "../support/service.js";
import { withService } from "../support/setup.js";

const PRODUCTION = { NODE_ENV: "production", DATABASE_URL: "postgres://identity@db.internal/identity", TOKEN_ISSUER: "https://id.example.com", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), SERVICE_KEYS: TEST_SERVICE_KEYS, PUBLIC_URL: "https://id.example.com" };

function refused(env: Record<string, string>, message: RegExp): void {
  expect(() => loadConfig(env)).toThrow(ConfigError);
  expect(() => loadConfig(env)).toThrow(message);
}

describe("configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig({});
    expect(config.otp).toMatchObject({
      ttlSec: 300,
      resendCooldownSec: 30,
      maxSendsPerDestinationPerHour: 5,
      maxSendsPerIpPerHour: 30,
      maxVerifyFailuresPerIpPerHour: 60,
      signUpEnabled: true,
      emailProvider: "console",
      smsProvider: "console",
    });
    expect(config.loginLimits).toEqual({ maxFailuresPerAccountPerHour: 100, maxFailuresPerIpPerHour: 300 });
    expect(loadConfig(PRODUCTION).otp).toMatchObject({ emailProvider: "disabled", smsProvider: "disabled" });
  });

  it("refuses values out of bounds", () => {
    expect(loadConfig({ OTP_TTL_SECONDS: "600" }).otp.ttlSec).toBe(600);
    refused({ OTP_TTL_SECONDS: "601" }, /OTP_TTL_SECONDS must be between 30 and 600/);
    refused({ LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR: "101" }, /LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR/);
    refused({ OTP_SIGN_UP: "maybe" }, /OTP_SIGN_UP must be true or false/);
    refused({ OTP_EMAIL_PROVIDER: "carrier-pigeon" }, /OTP_EMAIL_PROVIDER must be one of console, smtp, disabled/);
  });

  it("requires what each provider needs", () => {
    refused({ OTP_EMAIL_PROVIDER: "smtp" }, /SMTP_URL/);
    refused({ OTP_EMAIL_PROVIDER: "smtp", SMTP_URL: "smtp://mail.example.com" }, /SMTP_FROM/);
    expect(loadConfig({ OTP_EMAIL_PROVIDER: "smtp", SMTP_URL: "smtps://u:p@mail.example.com:465", SMTP_FROM: "Id <id@example.com>" }).otp.smtp).toEqual({
      url: "smtps://u:p@mail.example.com:465",
      from: "Id <id@example.com>",
    });
    refused({ OTP_SMS_PROVIDER: "webhook", SMS_WEBHOOK_URL: "not a url" }, /SMS_WEBHOOK_URL/);
    refused({ ...PRODUCTION, OTP_SMS_PROVIDER: "webhook", SMS_WEBHOOK_URL: "http://sms.example.com/send" }, /https/);
  });

  it("refuses the console provider in production", async () => {
    refused({ ...PRODUCTION, OTP_EMAIL_PROVIDER: "console" }, /OTP_EMAIL_PROVIDER=console is refused/);
    refused({ ...PRODUCTION, OTP_SMS_PROVIDER: "console" }, /OTP_SMS_PROVIDER=console is refused/);
    // The real process stops at start with the configuration exit code.
    const database = await createTestDatabase();
    try {
      await expect(spawnServiceProcess(database.url, { NODE_ENV: "production", OTP_SMS_PROVIDER: "console" })).rejects.toThrow(
        /exited with 78.*OTP_SMS_PROVIDER=console is refused/s,
      );
    } finally {
      await database.drop();
    }
  });

  it("a disabled channel answers FAILED_PRECONDITION and sends nothing", async () => {
    await withService({ env: { OTP_SMS_PROVIDER: "disabled" } }, async (t) => {
      const { otp } = t.clients("grpc-web");
      await t.expectNothingStored(() =>
        expectError(otp.sendOtp({ channel: OtpChannel.SMS, destination: uniquePhone(), purpose: OtpPurpose.LOGIN }), {
          code: Code.FailedPrecondition,
          reason: "OTP_CHANNEL_DISABLED",
        }),
      );
      await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: uniqueEmail("still-on"), purpose: OtpPurpose.LOGIN });
    });
  });
});
