// identity.v1.FederationService: proto <-> domain mapping only.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type {
  FederationService,
  FinishFederatedLoginRequest,
  FinishLinkIdentityRequest,
  ListLinkedIdentitiesRequest,
  ListProvidersRequest,
  StartFederatedLoginRequest,
  StartLinkIdentityRequest,
  UnlinkIdentityRequest,
} from "../../gen/identity/v1/federation_service_pb.js";
import type { Callers } from "../domain/callers/callers.js";
import type { Federation, Started } from "../domain/federation/federation.js";
import type { FederatedIdentityRow } from "../store/index.js";
import { deliverTokens } from "./browser-session.js";
import { clientMeta, SignedInRpcs } from "./call.js";
import { challengeToProto, userToProto } from "./mappers.js";
import type { RpcMetrics } from "./rpc-metrics.js";

export interface FederationServiceDeps {
  readonly federation: Federation;
  readonly callers: Callers;
}

/** Metrics that follow from a FederationService RPC's outcome (see rpc-metrics.ts). */
export const federationMetrics: RpcMetrics<typeof FederationService> = {
  finishFederatedLogin: (metrics, method) => (_request, response, failure) => {
    const answer = (response as { login?: { result?: { case?: string } } } | undefined)?.login?.result?.case;
    metrics.logins.inc({ outcome: `${method.name}:${failure ?? (answer === "mfaChallenge" ? "mfa_required" : "success")}` });
  },
};

function startedToProto(started: Started) {
  return { authorizationUrl: started.authorizationUrl, state: started.state, expireTime: timestampFromDate(started.expiresAt) };
}

function identityToProto(identity: FederatedIdentityRow) {
  return { provider: identity.provider, subject: identity.subject, email: identity.email ?? "", createTime: timestampFromDate(identity.createdAt) };
}

export class FederationServiceImpl extends SignedInRpcs<FederationServiceDeps> implements ServiceImpl<typeof FederationService> {
  listProviders(_req: ListProvidersRequest) {
    return { providers: this.deps.federation.providers().map(({ id, name }) => ({ id, name })) };
  }

  async startFederatedLogin(req: StartFederatedLoginRequest, ctx: HandlerContext) {
    return startedToProto(await this.deps.federation.startLogin(req.provider, req.redirectUri, clientMeta(ctx)));
  }

  async finishFederatedLogin(req: FinishFederatedLoginRequest, ctx: HandlerContext) {
    const { user, result, newUser, linked } = await this.deps.federation.finishLogin({ state: req.state, code: req.code, iss: req.iss }, clientMeta(ctx));
    // As AuthService.Login: a browser call gets the refresh token as its cookie (browser-session.ts).
    const login = result.kind === "tokens"
      ? { result: { case: "tokens" as const, value: deliverTokens(ctx, result.tokens) }, user: userToProto(user) }
      : { result: { case: "mfaChallenge" as const, value: challengeToProto(result.challenge) } };
    return { login, newUser, linked };
  }

  async startLinkIdentity(req: StartLinkIdentityRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    return startedToProto(await this.deps.federation.startLink(caller, req.provider, req.redirectUri, clientMeta(ctx)));
  }

  async finishLinkIdentity(req: FinishLinkIdentityRequest, ctx: HandlerContext) {
    const caller = await this.caller(ctx);
    const identity = await this.deps.federation.finishLink(caller, { state: req.state, code: req.code, iss: req.iss }, clientMeta(ctx));
    return { identity: identityToProto(identity) };
  }

  async listLinkedIdentities(_req: ListLinkedIdentitiesRequest, ctx: HandlerContext) {
    const identities = await this.deps.federation.list(await this.caller(ctx));
    return { identities: identities.map(identityToProto) };
  }

  async unlinkIdentity(req: UnlinkIdentityRequest, ctx: HandlerContext) {
    await this.deps.federation.unlink(await this.caller(ctx), req.provider, req.subject, clientMeta(ctx));
    return {};
  }
}
