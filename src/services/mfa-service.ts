// identity.v1.MfaService: proto <-> domain mapping only.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type {
  ConfirmTotpRequest,
  DisableCodeFactorRequest,
  DisableTotpRequest,
  EnableCodeFactorRequest,
  GetMfaStatusRequest,
  MfaService,
  RegenerateBackupCodesRequest,
  SendMfaCodeRequest,
  SetupTotpRequest,
  VerifyMfaRequest,
} from "../../gen/identity/v1/mfa_service_pb.js";
import type { Callers } from "../domain/callers/callers.js";
import { invalidField } from "../domain/errors.js";
import type { Mfa, SecondFactor } from "../domain/mfa/mfa.js";
import { deliverTokens } from "./browser-session.js";
import { clientMeta, SignedInRpcs } from "./call.js";
import { mfaMethodFromProto, userToProto } from "./mappers.js";
import { channelFromProto } from "./otp-service.js";
import { mfaCodeSendOutcomes, signInOutcomes, type RpcMetrics } from "./rpc-metrics.js";

export interface MfaServiceDeps {
  readonly mfa: Mfa;
  readonly callers: Callers;
}

/** Metrics that follow from an MfaService RPC's outcome (see rpc-metrics.ts). */
export const mfaMetrics: RpcMetrics<typeof MfaService> = {
  verifyMfa: signInOutcomes,
  sendMfaCode: mfaCodeSendOutcomes,
};

export class MfaServiceImpl extends SignedInRpcs<MfaServiceDeps> implements ServiceImpl<typeof MfaService> {


  async setupTotp(_req: SetupTotpRequest, ctx: HandlerContext) {
    const setup = await this.deps.mfa.setup(await this.caller(ctx));
    return { secret: setup.secret, otpauthUrl: setup.otpauthUrl, qrCodeDataUrl: setup.qrCodeDataUrl };
  }

  async confirmTotp(req: ConfirmTotpRequest, ctx: HandlerContext) {
    return { backupCodes: await this.deps.mfa.confirm(await this.caller(ctx), req.code, clientMeta(ctx)) };
  }

  async verifyMfa(req: VerifyMfaRequest, ctx: HandlerContext) {
    if (req.code.case === undefined) {
      throw invalidField("totp_code", "REQUIRED", "a totp_code, backup_code, email_code or sms_code is required");
    }
    const kinds = { totpCode: "totp", backupCode: "backup", emailCode: "email", smsCode: "sms" } as const;
    const factor: SecondFactor = { kind: kinds[req.code.case], code: req.code.value };
    const { user, tokens } = await this.deps.mfa.verifyChallenge(req.challengeToken, factor, clientMeta(ctx));
    return { tokens: deliverTokens(ctx, tokens), user: userToProto(user) };
  }

  async disableTotp(req: DisableTotpRequest, ctx: HandlerContext) {
    await this.deps.mfa.disable(await this.caller(ctx), req.password, req.code, clientMeta(ctx));
    return {};
  }

  async regenerateBackupCodes(req: RegenerateBackupCodesRequest, ctx: HandlerContext) {
    return { backupCodes: await this.deps.mfa.regenerateBackupCodes(await this.caller(ctx), req.totpCode, clientMeta(ctx)) };
  }

  async getMfaStatus(_req: GetMfaStatusRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const status = await this.deps.mfa.status(caller.userId);
    return {
      totpEnabled: status.enabled,
      backupCodesRemaining: status.backupCodesRemaining,
      enableTime: status.enabledAt ? timestampFromDate(status.enabledAt) : undefined,
      emailCodeEnabled: status.codeFactors.includes("email"),
      smsCodeEnabled: status.codeFactors.includes("sms"),
    };
  }

  async sendMfaCode(req: SendMfaCodeRequest, ctx: HandlerContext) {
    const sent = await this.deps.mfa.sendChallengeCode(req.challengeToken, mfaMethodFromProto(req.method), clientMeta(ctx));
    return { expireTime: timestampFromDate(sent.expiresAt), resendTime: timestampFromDate(sent.resendAt) };
  }

  async enableCodeFactor(req: EnableCodeFactorRequest, ctx: HandlerContext) {
    await this.deps.mfa.enableCodeFactor(await this.caller(ctx), channelFromProto(req.channel), req.password, clientMeta(ctx));
    return {};
  }

  async disableCodeFactor(req: DisableCodeFactorRequest, ctx: HandlerContext) {
    await this.deps.mfa.disableCodeFactor(await this.caller(ctx), channelFromProto(req.channel), req.password, clientMeta(ctx));
    return {};
  }
}
