// identity.v1.OtpService: proto <-> domain mapping only.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import type { OtpService, SendOtpRequest, VerifyOtpRequest } from "../../gen/identity/v1/otp_service_pb.js";
import type { Callers } from "../domain/callers/callers.js";
import type { ContactVerification } from "../domain/accounts/contact-verification.js";
import type { OtpChannel as DomainChannel } from "../domain/accounts/contacts.js";
import { AppError, invalidField } from "../domain/errors.js";
import type { OtpLogin } from "../domain/otp/login.js";
import type { PasswordReset } from "../domain/accounts/password-reset.js";
import { deliverTokens } from "./browser-session.js";
import { clientMeta, SignedInRpcs } from "./call.js";
import { userToProto, challengeToProto } from "./mappers.js";
import { codeSendOutcomes, signInOutcomes, type RpcMetrics } from "./rpc-metrics.js";

export interface OtpServiceDeps {
  readonly callers: Callers;
  readonly otpLogin: OtpLogin;
  readonly contactVerification: ContactVerification;
  readonly passwordReset: PasswordReset;
}

/** The domain channel, or undefined for UNSPECIFIED (and unknown values): a field violation. */
export function channelFromProto(channel: OtpChannel): DomainChannel | undefined {
  if (channel === OtpChannel.SMS) return "sms";
  if (channel === OtpChannel.EMAIL) return "email";
  return undefined;
}

function purposeViolation(description: string): AppError {
  return invalidField("purpose", "INVALID_PURPOSE", description);
}

/**
 * Metrics that follow from an OtpService RPC's outcome (see rpc-metrics.ts). VerifyOtp counts as
 * a sign-in whatever its purpose, as SendOtp counts every code sent.
 */
export const otpMetrics: RpcMetrics<typeof OtpService> = {
  sendOtp: codeSendOutcomes,
  verifyOtp: signInOutcomes,
};

export class OtpServiceImpl extends SignedInRpcs<OtpServiceDeps> implements ServiceImpl<typeof OtpService> {

  async sendOtp(req: SendOtpRequest, ctx: HandlerContext) {
    const channel = channelFromProto(req.channel);
    const client = clientMeta(ctx);
    let sent;
    switch (req.purpose) {
      case OtpPurpose.LOGIN:
        sent = await this.deps.otpLogin.send(channel, req.destination, client);
        break;
      case OtpPurpose.VERIFY_CONTACT: {
        const caller = await this.caller(ctx);
        sent = await this.deps.contactVerification.send(caller, channel, req.destination, client);
        break;
      }
      case OtpPurpose.PASSWORD_RESET:
        // The same as AuthService.RequestPasswordReset.
        sent = await this.deps.passwordReset.request(channel, req.destination, client);
        break;
      default:
        throw purposeViolation("must be LOGIN, VERIFY_CONTACT or PASSWORD_RESET");
    }
    return { expireTime: timestampFromDate(sent.expiresAt), resendTime: timestampFromDate(sent.resendAt) };
  }

  async verifyOtp(req: VerifyOtpRequest, ctx: HandlerContext) {
    const channel = channelFromProto(req.channel);
    const client = clientMeta(ctx);
    switch (req.purpose) {
      case OtpPurpose.LOGIN: {
        const signIn = await this.deps.otpLogin.verify(channel, req.destination, req.code, client);
        if (signIn.result.kind === "mfa") {
          return { result: { case: "mfaChallenge" as const, value: challengeToProto(signIn.result.challenge) }, newUser: false };
        }
        const result = { case: "tokens" as const, value: deliverTokens(ctx, signIn.result.tokens) };
        return { result, newUser: signIn.newUser, user: userToProto(signIn.user) };
      }
      case OtpPurpose.VERIFY_CONTACT: {
        const caller = await this.caller(ctx);
        const user = await this.deps.contactVerification.verify(caller, channel, req.destination, req.code, client);
        return { newUser: false, user: userToProto(user) };
      }
      case OtpPurpose.PASSWORD_RESET:
        throw purposeViolation("PASSWORD_RESET codes are spent by AuthService.ResetPassword, with the new password");
      default:
        throw purposeViolation("must be LOGIN or VERIFY_CONTACT");
    }
  }
}
