// identity.v1.TokenService: proto <-> domain mapping only.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  InactiveReason,
  SubjectKind,
  type GetJwksRequest,
  type IssueServiceTokenRequest,
  type RefreshTokenRequest,
  type RevokeTokenRequest,
  type TokenService,
  type VerifyTokenRequest,
  type VerifyTokenResponse,
  VerifyTokenResponseSchema,
  type WatchRevocationsRequest,
  type WatchRevocationsResponseSchema,
} from "../../gen/identity/v1/token_service_pb.js";
import type { AuditLog } from "../domain/audit/audit.js";
import type { Callers } from "../domain/callers/callers.js";
import { AppError, invalidField } from "../domain/errors.js";
import type { ServiceTokens } from "../domain/tokens/service-tokens.js";
import type { Clock } from "../domain/clock.js";
import type { TokenClaims } from "../domain/tokens/claims.js";
import { checkRequirements, unmetRequirement, type TokenRequirements } from "../domain/tokens/requirements.js";
import type { NumberedChange, RevocationStream } from "../domain/tokens/revocation-stream.js";
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
  readonly revocationStream: RevocationStream;
  readonly clock: Clock;
}

/** Longer cursors are refused (ours are about 30 characters). */
const MAX_CURSOR_LENGTH = 64;
const DEFAULT_HEARTBEAT_MS = 5_000;

/** WatchRevocationsRequest.heartbeat_interval: 1 to 60 s, 5 s when unset. */
function heartbeatInterval(req: WatchRevocationsRequest): number {
  if (!req.heartbeatInterval) return DEFAULT_HEARTBEAT_MS;
  const ms = Number(req.heartbeatInterval.seconds) * 1000 + Math.floor(req.heartbeatInterval.nanos / 1e6);
  if (!(ms >= 1_000 && ms <= 60_000)) throw invalidField("heartbeat_interval", "OUT_OF_RANGE", "must be between 1 s and 60 s");
  return ms;
}

function changeMessage({ cursor, change }: NumberedChange): MessageInitShape<typeof WatchRevocationsResponseSchema> {
  switch (change.kind) {
    case "session":
      return { cursor, event: { case: "sessionRevoked", value: { sessionId: change.sessionId, revokeTime: timestampFromMs(change.at.getTime()) } } };
    case "subject":
      return { cursor, event: { case: "subjectTokensInvalidated", value: { subject: change.subject, validAfter: timestampFromMs(change.validAfter.getTime()), disabled: change.disabled } } };
    case "keyPublished":
      return { cursor, event: { case: "keyPublished", value: { ...change.key } } };
    case "keyRetired":
      return { cursor, event: { case: "keyRetired", value: change.kid } };
  }
}

/** VerifyToken's answer for an inactive token, one frozen message per reason. */
const INACTIVE_ANSWERS = Object.fromEntries(
  Object.keys(InactiveReason)
    .filter((name) => Number.isNaN(Number(name)))
    .map((name) => [name, Object.freeze(create(VerifyTokenResponseSchema, { active: false, reason: InactiveReason[name as keyof typeof InactiveReason] }))]),
) as Record<keyof typeof InactiveReason, VerifyTokenResponse>;

/** VerifyToken's answer for an active token; `audience`: the one the request asked for, if any. */
function activeAnswer(c: TokenClaims, audience: string): VerifyTokenResponse {
  if (c.kind === "service") {
    return create(VerifyTokenResponseSchema, {
      active: true,
      subjectKind: SubjectKind.SERVICE,
      serviceName: c.service,
      scope: [...c.scope],
      tokenId: c.jti,
      issueTime: timestampFromMs(c.iat * 1000),
      expireTime: timestampFromMs(c.exp * 1000),
      issuer: c.iss,
      // The one checked: the requested audience, else this service's own (which the token names).
      audience: audience !== "" ? audience : c.aud[0],
    });
  }
  return create(VerifyTokenResponseSchema, {
    active: true,
    subjectKind: SubjectKind.USER,
    userId: c.sub,
    sessionId: c.sid,
    tokenId: c.jti,
    role: c.role,
    username: c.username,
    amr: [...c.amr],
    authTime: timestampFromMs(c.authTime * 1000),
    issueTime: timestampFromMs(c.iat * 1000),
    expireTime: timestampFromMs(c.exp * 1000),
    issuer: c.iss,
    audience: c.aud,
  });
}

/** VerifyToken's optional requirements; undefined when it asks none (the hot path allocates nothing). */
function requirementsOf(req: VerifyTokenRequest): TokenRequirements | undefined {
  if (req.requireAmr.length === 0 && req.requireRole.length === 0 && req.maxAuthAge === undefined) return undefined;
  const maxAuthAgeSec = req.maxAuthAge === undefined ? undefined : Number(req.maxAuthAge.seconds) + req.maxAuthAge.nanos / 1e9;
  return { amr: req.requireAmr, roles: req.requireRole, maxAuthAgeSec };
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

  /**
   * The answer for an active token to the plain request (no audience, no requirements), built
   * once per token and kept as long as the verifier keeps its claims (keyed by that object): the
   * same frozen message for every call, which the grpc-js adapter encodes once (grpc-server.ts).
   */
  private readonly plainAnswers = new WeakMap<TokenClaims, VerifyTokenResponse>();

  // AUDIENCE_INTERNAL: the call policy admitted the calling service before this runs.
  // Synchronous: introspection is in memory, so the call policy answers without a promise.
  verifyToken(req: VerifyTokenRequest): VerifyTokenResponse {
    required("token", req.token);
    const requirements = requirementsOf(req);
    if (requirements) checkRequirements(requirements);
    const verification = this.deps.callers.introspect(req.token, req.audience);
    if (!verification.active) return INACTIVE_ANSWERS[verification.reason];
    const c = verification.claims;
    if (requirements) {
      const unmet = unmetRequirement(c, requirements, this.deps.clock.now().getTime() / 1000);
      if (unmet) return INACTIVE_ANSWERS[unmet];
      return activeAnswer(c, req.audience);
    }
    if (req.audience !== "") return activeAnswer(c, req.audience);
    let answer = this.plainAnswers.get(c);
    if (!answer) this.plainAnswers.set(c, (answer = Object.freeze(activeAnswer(c, ""))));
    return answer;
  }

  // AUDIENCE_INTERNAL (tokens.issue): the call policy admitted a service credential; only a named
  // service account (not the development loopback exemption) can be a token's subject.
  async issueServiceToken(req: IssueServiceTokenRequest, ctx: HandlerContext) {
    const caller = serviceCaller(ctx);
    if (!caller) throw new AppError("SERVICE_KEY_REQUIRED", "IssueServiceToken needs a named service account (key or client certificate)");
    const issued = await this.deps.serviceTokens.issue(caller, req.audience, clientMeta(ctx));
    return { accessToken: issued.token, expireTime: timestampFromMs(issued.expiresAt.getTime()), scope: [...issued.scope] };
  }

  // AUDIENCE_INTERNAL (tokens.verify): the call policy admitted the calling service. The
  // subscription is taken before the first message, so nothing between the snapshot and the
  // first change is lost; the stream ends with OK at shutdown, and with UNAVAILABLE when the
  // client reads so slowly that BACKLOG changes wait for it (it resumes with its cursor).
  async *watchRevocations(req: WatchRevocationsRequest, ctx: HandlerContext): AsyncGenerator<MessageInitShape<typeof WatchRevocationsResponseSchema>> {
    const heartbeatMs = heartbeatInterval(req);
    if (req.cursor.length > MAX_CURSOR_LENGTH) throw invalidField("cursor", "TOO_LONG", `must be at most ${MAX_CURSOR_LENGTH} characters`);
    const subscription = this.deps.revocationStream.subscribe(req.cursor);
    const cancelled = new Promise<undefined>((resolve) => ctx.signal.addEventListener("abort", () => resolve(undefined), { once: true }));
    try {
      if ("snapshot" in subscription.start) {
        const snap = subscription.start.snapshot;
        yield {
          cursor: snap.cursor,
          event: {
            case: "snapshot",
            value: {
              sessions: snap.sessions.map(({ sessionId, at }) => ({ sessionId, revokeTime: timestampFromMs(at.getTime()) })),
              subjects: snap.subjects.map(({ subject, validAfter, disabled }) => ({ subject, validAfter: timestampFromMs(validAfter.getTime()), disabled })),
              keys: snap.keys.map((k) => ({ ...k })),
              retention: durationFromMs(snap.retentionMs),
            },
          },
        };
      } else {
        for (const change of subscription.start.missed) yield changeMessage(change);
      }
      while (!ctx.signal.aborted) {
        const changes = await Promise.race([subscription.next(heartbeatMs), cancelled]);
        if (changes === undefined) {
          if (subscription.ended === "behind") throw new AppError("UNAVAILABLE", "WatchRevocations client fell behind; resume with the last cursor");
          return;
        }
        if (changes.length === 0) {
          yield { cursor: subscription.cursor, event: { case: "heartbeat", value: { time: timestampFromMs(this.deps.clock.now().getTime()) } } };
        }
        for (const change of changes) yield changeMessage(change);
      }
    } finally {
      subscription.close();
    }
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
