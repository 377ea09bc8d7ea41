// The per-RPC metrics each service file declares (no database, no server): the series and labels
// dashboards and test/ops/observability.test.ts read, for every RPC that has one.
import { create, type DescMethod } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AuthService, LoginResponseSchema, RequestPasswordResetRequestSchema } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaMethod, OtpChannel } from "../../gen/identity/v1/common_pb.js";
import { MfaService, SendMfaCodeRequestSchema, VerifyMfaRequestSchema } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService, SendOtpRequestSchema, VerifyOtpRequestSchema } from "../../gen/identity/v1/otp_service_pb.js";
import { InactiveReason, TokenService, VerifyTokenRequestSchema } from "../../gen/identity/v1/token_service_pb.js";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { authMetrics } from "../../src/services/auth-service.js";
import { mfaMetrics } from "../../src/services/mfa-service.js";
import { otpMetrics } from "../../src/services/otp-service.js";
import type { OutcomeMetric } from "../../src/services/rpc-metrics.js";
import { tokenMetrics } from "../../src/services/token-service.js";

type Observer = (request: unknown, response: unknown, failure: string | undefined) => void;

/** A fresh registry and the observer a service builds for `method` from it. */
function observing(metric: unknown, method: DescMethod): { metrics: Metrics; observe: Observer } {
  expect(metric, `a metric for ${method.name}`).toBeTypeOf("function");
  const metrics = createMetrics();
  return { metrics, observe: (metric as OutcomeMetric<DescMethod> as (m: Metrics, d: DescMethod) => Observer)(metrics, method) };
}

async function series(counter: Metrics[keyof Metrics]): Promise<Array<[Record<string, unknown>, number]>> {
  const { values } = await (counter as Metrics["logins"]).get();
  return values.map((v) => [{ ...v.labels }, v.value]);
}

describe("sign-in outcomes: identity_logins_total{method, outcome}", () => {
  it("counts Login by success, MFA challenge and failure reason", async () => {
    const { metrics, observe } = observing(authMetrics.login, AuthService.method.login);
    observe({}, { result: { case: "tokens", value: {} } }, undefined);
    observe({}, create(LoginResponseSchema, { result: { case: "mfaChallenge", value: {} } }), undefined);
    observe({}, undefined, "INVALID_CREDENTIALS");
    observe({}, undefined, "INVALID_CREDENTIALS");
    expect(await series(metrics.logins)).toEqual([
      [{ method: "Login", outcome: "success" }, 1],
      [{ method: "Login", outcome: "mfa_required" }, 1],
      [{ method: "Login", outcome: "INVALID_CREDENTIALS" }, 2],
    ]);
  });

  it("counts VerifyOtp and VerifyMfa under their own names", async () => {
    const otp = observing(otpMetrics.verifyOtp, OtpService.method.verifyOtp);
    otp.observe(create(VerifyOtpRequestSchema), { result: { case: "mfaChallenge", value: {} }, newUser: false }, undefined);
    otp.observe(create(VerifyOtpRequestSchema), undefined, "OTP_INVALID");
    expect(await series(otp.metrics.logins)).toEqual([
      [{ method: "VerifyOtp", outcome: "mfa_required" }, 1],
      [{ method: "VerifyOtp", outcome: "OTP_INVALID" }, 1],
    ]);
    const mfa = observing(mfaMetrics.verifyMfa, MfaService.method.verifyMfa);
    mfa.observe(create(VerifyMfaRequestSchema), { tokens: {}, user: {} }, undefined);
    mfa.observe(create(VerifyMfaRequestSchema), undefined, "Internal");
    expect(await series(mfa.metrics.logins)).toEqual([
      [{ method: "VerifyMfa", outcome: "success" }, 1],
      [{ method: "VerifyMfa", outcome: "Internal" }, 1],
    ]);
  });
});

describe("code sends: identity_otp_sends_total{channel, result}", () => {
  it("counts SendOtp by channel and result", async () => {
    const { metrics, observe } = observing(otpMetrics.sendOtp, OtpService.method.sendOtp);
    observe(create(SendOtpRequestSchema, { channel: OtpChannel.SMS }), {}, undefined);
    observe(create(SendOtpRequestSchema, { channel: OtpChannel.EMAIL }), undefined, "RATE_LIMITED");
    observe(create(SendOtpRequestSchema), undefined, "InvalidArgument");
    // An open enum may carry a number the proto does not name.
    observe(create(SendOtpRequestSchema, { channel: 99 as OtpChannel }), undefined, "InvalidArgument");
    expect(await series(metrics.otpSends)).toEqual([
      [{ channel: "SMS", result: "sent" }, 1],
      [{ channel: "EMAIL", result: "RATE_LIMITED" }, 1],
      [{ channel: "UNSPECIFIED", result: "InvalidArgument" }, 2],
    ]);
  });

  it("counts RequestPasswordReset with them", async () => {
    const { metrics, observe } = observing(authMetrics.requestPasswordReset, AuthService.method.requestPasswordReset);
    observe(create(RequestPasswordResetRequestSchema, { channel: OtpChannel.EMAIL }), {}, undefined);
    expect(await series(metrics.otpSends)).toEqual([[{ channel: "EMAIL", result: "sent" }, 1]]);
  });

  it("counts SendMfaCode by the method's channel", async () => {
    const { metrics, observe } = observing(mfaMetrics.sendMfaCode, MfaService.method.sendMfaCode);
    observe(create(SendMfaCodeRequestSchema, { method: MfaMethod.SMS_CODE }), {}, undefined);
    observe(create(SendMfaCodeRequestSchema, { method: MfaMethod.EMAIL_CODE }), undefined, "MFA_METHOD_UNAVAILABLE");
    observe(create(SendMfaCodeRequestSchema, { method: MfaMethod.TOTP }), undefined, "InvalidArgument");
    expect(await series(metrics.otpSends)).toEqual([
      [{ channel: "SMS", result: "sent" }, 1],
      [{ channel: "EMAIL", result: "MFA_METHOD_UNAVAILABLE" }, 1],
      [{ channel: "UNSPECIFIED", result: "InvalidArgument" }, 1],
    ]);
  });
});

describe("VerifyToken: identity_verify_token_total{result}", () => {
  it("counts answers by result, active or the inactive reason's name, and not failed calls", async () => {
    const { metrics, observe } = observing(tokenMetrics.verifyToken, TokenService.method.verifyToken);
    const request = create(VerifyTokenRequestSchema, { token: "t" });
    observe(request, { active: true }, undefined);
    observe(request, { active: true }, undefined);
    observe(request, { active: false, reason: InactiveReason.EXPIRED }, undefined);
    observe(request, { active: false }, undefined);
    observe(request, undefined, "SERVICE_KEY_INVALID");
    expect(await series(metrics.verifications)).toEqual([
      [{ result: "active" }, 2],
      [{ result: "EXPIRED" }, 1],
      [{ result: "UNSPECIFIED" }, 1],
    ]);
  });
});

it("declares no metric for the other RPCs", () => {
  const declared = [authMetrics, otpMetrics, mfaMetrics, tokenMetrics].flatMap((table) => Object.keys(table)).sort();
  expect(declared).toEqual(["login", "requestPasswordReset", "sendMfaCode", "sendOtp", "verifyMfa", "verifyOtp", "verifyToken"]);
});
