// identity.v1.TokenService: proto <-> domain mapping only.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  InactiveReason,
  SubjectKind,
  type GetJwksRequest,
  type IssueServiceTokenRequest,
  type RefreshTokenRequest,
  type RevokeTokenRequest,
  type TokenService,
  type VerifyTokenRequest,
  type WatchRevocationsRequest,
  type WatchRevocationsResponse,
} from "../../gen/identity/v1/token_service_pb.js";
import type { AuditLog } from "../domain/audit/audit.js";
import type { Callers } from "../domain/callers/callers.js";
import { AppError, invalidField } from "../domain/errors.js";
import type { ServiceTokens } from "../domain/tokens/service-tokens.js";
import type { SessionTokens } from "../domain/sessions/session-tokens.js";
import type { Sessions } from "../domain/sessions/sessions.js";
import type { SigningKeys } from "../domain/tokens/signing-keys.js";
import type { AccessTokens } from "../domain/tokens/access-tokens.js";
import { clearRefreshCookie, deliverTokens, presentedRefreshToken } from "./browser-session.js";
import { callInfo, clientMeta, serviceCaller } from "./call.js";
import type { RpcMetrics } from "./rpc-metrics.js";

export interface TokenServiceDeps {
  readonly callers: Callers;
  readonly accessTokens: AccessTokens;
  readonly sessionTokens: SessionTokens;
  readonly sessions: Sessions;
  readonly signingKeys: SigningKeys;
  readonly audit: AuditLog;
  readonly serviceTokens: ServiceTokens;
}

function required(field: string, value: string): void {
  if (value === "") {
    throw invalidField(field, "REQUIRED", "is required");
  }
}

/** Metrics that follow from a TokenService RPC's outcome (see rpc-metrics.ts). */
export const tokenMetrics: RpcMetrics<typeof TokenService> = {
  /** VerifyToken answers by result: identity_verify_token_total{result="active"|<InactiveReason>}. */
  verifyToken(metrics) {
    // The hot path: labelled children looked up once per result, not hashed from labels per call.
    const byResult = new Map<string, { inc(): void }>();
    return (_request, response) => {
      if (response === undefined) return;
      const result = response.active ? "active" : (InactiveReason[response.reason ?? 0] ?? "inactive");
      let counter = byResult.get(result);
      if (!counter) byResult.set(result, (counter = metrics.verifications.labels({ result })));
      counter.inc();
    };
  },
};

export class TokenServiceImpl implements ServiceImpl<typeof TokenService> {
  constructor(private readonly deps: TokenServiceDeps) {}

  // AUDIENCE_INTERNAL: the call policy admitted the calling service before this runs.
  async verifyToken(req: VerifyTokenRequest) {
    required("token", req.token);
    const verification = await this.deps.callers.introspect(req.token, req.audience);
    if (!verification.active) return { active: false, reason: InactiveReason[verification.reason] };
    const c = verification.claims;
    if (c.kind === "service") {
      return {
        active: true,
        subjectKind: SubjectKind.SERVICE,
        serviceName: c.service,
        scope: [...c.scope],
        tokenId: c.jti,
        issueTime: timestampFromMs(c.iat * 1000),
        expireTime: timestampFromMs(c.exp * 1000),
        issuer: c.iss,
        // The one checked: the requested audience, else this service's own (which the token names).
        audience: req.audience !== "" ? req.audience : c.aud[0],
      };
    }
    return {
      active: true,
      subjectKind: SubjectKind.USER,
      userId: c.sub,
      sessionId: c.sid,
      tokenId: c.jti,
      role: c.role,
      username: c.username,
      amr: [...c.amr],
      issueTime: timestampFromMs(c.iat * 1000),
      expireTime: timestampFromMs(c.exp * 1000),
      issuer: c.iss,
      audience: c.aud,
    };
  }

  // AUDIENCE_INTERNAL (tokens.issue): the call policy admitted a service credential; only a named
  // service account (not the development loopback exemption) can be a token's subject.
  async issueServiceToken(req: IssueServiceTokenRequest, ctx: HandlerContext) {
    const caller = serviceCaller(ctx);
    if (!caller) throw new AppError("SERVICE_KEY_REQUIRED", "IssueServiceToken needs a named service account (key or client certificate)");
    const issued = await this.deps.serviceTokens.issue(caller, req.audience, clientMeta(ctx));
    return { accessToken: issued.token, expireTime: timestampFromMs(issued.expiresAt.getTime()), scope: [...issued.scope] };
  }

  // AUDIENCE_INTERNAL (tokens.verify). Implemented in the next commit.
  // eslint-disable-next-line require-yield
  async *watchRevocations(_req: WatchRevocationsRequest): AsyncGenerator<WatchRevocationsResponse> {
    throw new AppError("UNAVAILABLE", "WatchRevocations is not served yet");
  }

  async refreshToken(req: RefreshTokenRequest, ctx: HandlerContext) {
    // A browser call sends none in the message: its refresh token is in the cookie.
    const refreshToken = presentedRefreshToken(ctx, req.refreshToken);
    required("refresh_token", refreshToken);
    const tokens = await this.deps.sessionTokens.refresh(refreshToken, clientMeta(ctx));
    return { tokens: deliverTokens(ctx, tokens) };
  }

  async revokeToken(req: RevokeTokenRequest, ctx: HandlerContext) {
    const token = presentedRefreshToken(ctx, req.token);
    required("token", token);
    const session = await this.sessionOf(token);
    const cookie = callInfo(ctx).browser?.refreshToken;
    const cookieSession = cookie === undefined || cookie === token ? session : await this.deps.sessions.findByRefreshToken(cookie);
    if (session && (await this.deps.sessions.revoke(session.userId, session.sessionId, "revoked"))) {
      await this.deps.audit.record({ userId: session.userId, type: "SESSION_REVOKED", client: clientMeta(ctx), sessionId: session.sessionId, details: { via: "revoke_token" } });
    }
    // The browser's own session ended: its cookie is of no use any more.
    if (cookie === token || (cookie !== undefined && session !== undefined && cookieSession?.sessionId === session.sessionId)) clearRefreshCookie(ctx);
    return {};
  }

  getJwks(_req: GetJwksRequest) {
    return { keys: this.deps.signingKeys.jwks().map((k) => ({ ...k })) };
  }

  /** The session a token belongs to: an access token by its claims, a refresh token by lookup. */
  private async sessionOf(token: string): Promise<{ userId: string; sessionId: string } | undefined> {
    if (token.split(".").length === 3) {
      const verification = await this.deps.accessTokens.verify(token);
      // A service token has no session to end (it expires, or its account is disabled).
      if (!verification.active || verification.claims.kind !== "user") return undefined;
      return { userId: verification.claims.sub, sessionId: verification.claims.sid };
    }
    return this.deps.sessions.findByRefreshToken(token);
  }
}
