// Metrics that follow from one RPC's outcome. Each service file declares its own beside its RPCs
// (`authMetrics` in auth-service.ts, ...), keyed by the generated method names: renaming or
// removing an RPC in the proto fails to compile there instead of silently emptying a metric.
// The call policy (policy.ts) builds each observer once per service instance and calls it after
// every call, whatever its outcome. Outcomes every RPC shares (rate limits, refresh-token reuse)
// stay in policy.ts.
import type { DescMethod, DescMethodUnary, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { MfaMethod, OtpChannel } from "../../gen/identity/v1/common_pb.js";
import type { Metrics } from "../metrics.js";

/**
 * One call's outcome: its request, its response (undefined when it failed) and its failure
 * (the AppError reason, or the canonical code's name for any other error; undefined on success).
 */
export type OutcomeObserver<M extends DescMethod> =
  M extends DescMethodUnary<infer I, infer O>
    ? (request: MessageShape<I>, response: MessageInitShape<O> | undefined, failure: string | undefined) => void
    : never;

/** Builds a method's observer from the instance's registry and the method (whose name labels series). */
export type OutcomeMetric<M extends DescMethod> = (metrics: Metrics, method: M) => OutcomeObserver<M>;

/** The per-RPC metrics of one service, by the generated method names. */
export type RpcMetrics<S extends DescService> = { readonly [K in keyof S["method"]]?: OutcomeMetric<S["method"][K]> };

/**
 * Sign-in attempts (Login, VerifyOtp, VerifyMfa): identity_logins_total{method="<Rpc>",outcome},
 * the outcome being success, mfa_required (the answer is an MFA challenge) or the failure.
 */
export function signInOutcomes(metrics: Metrics, method: DescMethod) {
  const rpc = method.name;
  return (_request: unknown, response: unknown, failure: string | undefined): void => {
    const answer = (response as { result?: { case?: string } } | undefined)?.result?.case;
    const outcome = failure ?? (answer === "mfaChallenge" ? "mfa_required" : "success");
    metrics.logins.inc({ method: rpc, outcome });
  };
}

/** Code sends (SendOtp, RequestPasswordReset): identity_otp_sends_total{channel, result="sent"|<failure>}. */
export function codeSendOutcomes(metrics: Metrics) {
  return (request: { readonly channel: OtpChannel }, _response: unknown, failure: string | undefined): void => {
    metrics.otpSends.inc({ channel: OtpChannel[request.channel] ?? "UNSPECIFIED", result: failure ?? "sent" });
  };
}

/** MFA code sends (SendMfaCode): identity_otp_sends_total{channel, result}, with the other code sends. */
export function mfaCodeSendOutcomes(metrics: Metrics) {
  return (request: { readonly method: MfaMethod }, _response: unknown, failure: string | undefined): void => {
    const channel = request.method === MfaMethod.SMS_CODE ? "SMS" : request.method === MfaMethod.EMAIL_CODE ? "EMAIL" : "UNSPECIFIED";
    metrics.otpSends.inc({ channel, result: failure ?? "sent" });
  };
}
