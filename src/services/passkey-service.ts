// identity.v1.PasskeyService: proto <-> domain mapping only.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type {
  FinishPasskeyLoginRequest,
  FinishPasskeyRegistrationRequest,
  ListPasskeysRequest,
  PasskeySchema,
  PasskeyService,
  RemovePasskeyRequest,
  RenamePasskeyRequest,
  StartPasskeyLoginRequest,
  StartPasskeyRegistrationRequest,
} from "../../gen/identity/v1/passkey_service_pb.js";
import type { Callers } from "../domain/callers/callers.js";
import type { PasskeyLogin } from "../domain/passkeys/passkey-login.js";
import type { PasskeyRow, Passkeys } from "../domain/passkeys/passkeys.js";
import { deliverTokens } from "./browser-session.js";
import { clientMeta, SignedInRpcs } from "./call.js";
import { userToProto } from "./mappers.js";
import { signInOutcomes, type RpcMetrics } from "./rpc-metrics.js";

export interface PasskeyServiceDeps {
  readonly passkeys: Passkeys;
  readonly passkeyLogin: PasskeyLogin;
  readonly callers: Callers;
}

/** Metrics that follow from a PasskeyService RPC's outcome (see rpc-metrics.ts). */
export const passkeyMetrics: RpcMetrics<typeof PasskeyService> = {
  finishPasskeyLogin: signInOutcomes,
};

function passkeyToProto(passkey: PasskeyRow): MessageInitShape<typeof PasskeySchema> {
  return {
    id: passkey.id,
    name: passkey.name,
    credentialId: passkey.credentialId,
    transports: passkey.transports,
    deviceType: passkey.deviceType,
    backedUp: passkey.backedUp,
    createTime: timestampFromDate(passkey.createdAt),
    lastUseTime: passkey.lastUsedAt ? timestampFromDate(passkey.lastUsedAt) : undefined,
  };
}

export class PasskeyServiceImpl extends SignedInRpcs<PasskeyServiceDeps> implements ServiceImpl<typeof PasskeyService> {
  async startPasskeyRegistration(_req: StartPasskeyRegistrationRequest, ctx: HandlerContext) {
    return this.deps.passkeys.startRegistration(await this.caller(ctx));
  }

  async finishPasskeyRegistration(req: FinishPasskeyRegistrationRequest, ctx: HandlerContext) {
    const passkey = await this.deps.passkeys.finishRegistration(await this.caller(ctx), req.challengeId, req.responseJson, req.name, clientMeta(ctx));
    return { passkey: passkeyToProto(passkey) };
  }

  async startPasskeyLogin(_req: StartPasskeyLoginRequest, ctx: HandlerContext) {
    return this.deps.passkeyLogin.start(clientMeta(ctx));
  }

  async finishPasskeyLogin(req: FinishPasskeyLoginRequest, ctx: HandlerContext) {
    const { user, tokens } = await this.deps.passkeyLogin.finish(req.challengeId, req.responseJson, clientMeta(ctx));
    return { tokens: deliverTokens(ctx, tokens), user: userToProto(user) };
  }

  async listPasskeys(_req: ListPasskeysRequest, ctx: HandlerContext) {
    return { passkeys: (await this.deps.passkeys.list(await this.caller(ctx))).map(passkeyToProto) };
  }

  async renamePasskey(req: RenamePasskeyRequest, ctx: HandlerContext) {
    const passkey = await this.deps.passkeys.rename(await this.caller(ctx), req.passkeyId, req.name, clientMeta(ctx));
    return { passkey: passkeyToProto(passkey) };
  }

  async removePasskey(req: RemovePasskeyRequest, ctx: HandlerContext) {
    await this.deps.passkeys.remove(await this.caller(ctx), req.passkeyId, clientMeta(ctx));
    return {};
  }
}
