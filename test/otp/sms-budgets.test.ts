// SMS pumping: the per-address cap alone lets N addresses buy N times as many texts. Service-wide
// budgets bound SMS sends per hour in total and per country calling code, whatever the address;
// a refusal is a generic RATE_LIMITED to the client and a metric for the operator.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { loadConfig, ConfigError } from "../../src/config.js";
import { uniqueEmail } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { setupService } from "../support/setup.js";

const clock = new ManualClock();
const t = setupService({
  clock,
  env: {
    OTP_SMS_MAX_SENDS_PER_HOUR: "6",
    OTP_SMS_MAX_SENDS_PER_COUNTRY_PER_HOUR: "2",
    OTP_SMS_COUNTRY_LIMITS: "+44:3, +49:100",
  },
});
const { otp: webOtp } = t.clients("grpc-web");

let address = 0;
/** A send from an address of its own, so the per-address cap is never what refuses it. */
function sendFromNewAddress(channel: "sms" | "email", destination: string) {
  address++;
  return t.app.services.otpLogin.send(channel, destination, { ip: `198.51.100.${address}`, userAgent: "test" });
}

async function budgetMetric(scope: string, callingCode: string): Promise<number> {
  const body = await (await fetch(t.metricsUrl)).text();
  const line = body.split("\n").find((l) => l.startsWith(`identity_otp_budget_exhausted_total{scope="${scope}",calling_code="${callingCode}"}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

const US = ["+14155550101", "+14155550102", "+14155550103"];
const UK = ["+447400123451", "+447400123452", "+447400123453", "+447400123454"];
const DE = ["+4915112345671", "+4915112345672"];

describe("SMS send budgets across client addresses", () => {
  it("refuse a country's sends beyond OTP_SMS_MAX_SENDS_PER_COUNTRY_PER_HOUR, generically, storing and sending nothing", async () => {
    await sendFromNewAddress("sms", US[0]!);
    await sendFromNewAddress("sms", US[1]!);
    await expect(sendFromNewAddress("sms", US[2]!)).rejects.toMatchObject({ reason: "RATE_LIMITED" });
    expect(await budgetMetric("sms_country", "+1")).toBe(1);
    // Over the wire: the client sees only RATE_LIMITED with a retry delay, nothing is stored or sent.
    await t.expectNothingStored(async () => {
      const refused = await expectError(webOtp.sendOtp({ channel: OtpChannel.SMS, destination: US[2]!, purpose: OtpPurpose.LOGIN }), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
      expect(retryDelayMs(refused)).toBeGreaterThan(3_500_000);
      expect(refused.rawMessage).toBe("too many requests; retry later");
    });
    expect(await budgetMetric("sms_country", "+1")).toBe(2);
    expect(t.outbox.messages(US[2]!)).toEqual([]);
    // Email is not budgeted.
    await sendFromNewAddress("email", uniqueEmail("budget"));
  });

  it("apply the per-country override of OTP_SMS_COUNTRY_LIMITS", async () => {
    for (const phone of UK.slice(0, 3)) await sendFromNewAddress("sms", phone);
    await expect(sendFromNewAddress("sms", UK[3]!)).rejects.toMatchObject({ reason: "RATE_LIMITED" });
    expect(await budgetMetric("sms_country", "+44")).toBe(1);
  });

  it("refuse every country beyond OTP_SMS_MAX_SENDS_PER_HOUR in total", async () => {
    // 2 US + 3 UK sent so far: one more fits the global budget of 6.
    await sendFromNewAddress("sms", DE[0]!);
    await expect(sendFromNewAddress("sms", DE[1]!)).rejects.toMatchObject({ reason: "RATE_LIMITED" });
    expect(await budgetMetric("sms_global", "")).toBe(1);
    expect(await budgetMetric("sms_country", "+49")).toBe(0);
  });

  it("admit sends again an hour later", async () => {
    clock.advance(3_600_000);
    await sendFromNewAddress("sms", DE[1]!);
    await sendFromNewAddress("sms", US[2]!);
  });
});

describe("configuration", () => {
  it("has generous defaults and refuses malformed OTP_SMS_COUNTRY_LIMITS", () => {
    const defaults = loadConfig({ NODE_ENV: "test" }).otp;
    expect(defaults.smsMaxSendsPerHour).toBe(1_000);
    expect(defaults.smsMaxSendsPerCountryPerHour).toBe(300);
    expect([...loadConfig({ NODE_ENV: "test", OTP_SMS_COUNTRY_LIMITS: "+1:500,+44:100" }).otp.smsCountryLimits]).toEqual([["+1", 500], ["+44", 100]]);
    for (const bad of ["44:100", "+1:", "+1:0", "+1234:5", "+1=5"]) {
      expect(() => loadConfig({ NODE_ENV: "test", OTP_SMS_COUNTRY_LIMITS: bad }), bad).toThrow(ConfigError);
    }
  });
});
