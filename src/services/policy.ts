// Cross-cutting behaviour of every RPC, applied once to each method so both servers get exactly
// the same: the access its proto declares (access.ts), a request id, a server-side deadline,
// error mapping, metrics and one log line per call (at the level the method's success deserves,
// successLevel below). Metrics particular to one RPC are declared beside it (rpc-metrics.ts) and observed here.
import { randomUUID } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Level } from "pino";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { Audience } from "../../gen/identity/v1/access_pb.js";
import type { Callers, ServiceCaller } from "../domain/callers/callers.js";
import type { Roles } from "../domain/admin/roles.js";
import type { Clock } from "../domain/clock.js";
import { AppError } from "../domain/errors.js";
import type { ErrorReason } from "../error-reasons.js";
import { methodAccess, type MethodAccess } from "./access.js";
import { AUTHZ_PERMISSION } from "./forward-auth.js";
import { adminActorKey, authenticate, callInfo, callUserKey, isLoopback, serviceCallerKey, setResponseHeader, type CallInfo } from "./call.js";
import { toConnectError } from "./errors.js";
import { compileStringCheck } from "./request-strings.js";
import type { OutcomeMetric, RpcMetrics } from "./rpc-metrics.js";
import type { Tracing } from "../tracing.js";
import { traced } from "./tracing.js";

export interface PolicyDeps {
  readonly callers: Callers;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxDeadlineMs: number;
  /**
   * ACCESS_LOG_SAMPLE_RATE (0..1, validated by config.ts): the fraction of successful hot calls
   * (see successLevel) also logged at info. 0 or absent: none.
   */
  readonly accessLogSampleRate?: number;
  /** Who among people may call AdminService (AUDIENCE_ADMIN); absent, no person may. */
  readonly adminAccess?: AdminAccessSettings;
  /** OpenTelemetry (src/tracing.ts); absent, tracing is off and calls are not wrapped at all. */
  readonly tracing?: Tracing;
}

/** What admits a signed-in person to an AUDIENCE_ADMIN RPC (see admitAdmin). */
export interface AdminAccessSettings {
  readonly roles: Pick<Roles, "administers">;
  /** ADMIN_MAX_AUTH_AGE_SECONDS: how long ago the second factor may have been proven. */
  readonly maxAuthAgeSec: number;
  readonly clock: Clock;
  /**
   * The account's role as stored now, or undefined when it is no longer live: a demoted
   * administrator loses the powers at once, not when their access token expires.
   */
  liveRole(userId: string): Promise<string | undefined>;
}

/** The `amr` value of a session whose sign-in proved a second factor (src/domain/mfa/challenges.ts). */
const SECOND_FACTOR_AMR = "mfa";

/**
 * The permissions of the per-request verification a backend or proxy makes before serving each of
 * its own requests (VerifyToken, Envoy's Authorization/Check): calls whose rate is the rate of the
 * caller's traffic, not of people's actions.
 */
const VERIFICATION_PERMISSIONS: ReadonlySet<string> = new Set(["tokens.verify", AUTHZ_PERMISSION]);

/**
 * The level a method's successful call is logged at, decided once at start-up from its declared
 * access: `debug` for a unary internal verification RPC (the hot path: one line per verified
 * request cost VerifyToken about 30% of its throughput (issue 14) and floods the log with what
 * the caller logs anyway), `info` for every other RPC, whose success is a person's action worth a
 * line. Failures are logged as before whatever the method. WatchRevocations holds
 * tokens.verify too, but a stream ends rarely: it keeps its line.
 */
export function successLevel(method: DescMethod, access: MethodAccess = methodAccess(method)): Level {
  const hot = method.methodKind === "unary" && access.audience === Audience.INTERNAL && VERIFICATION_PERMISSIONS.has(access.permission);
  return hot ? "debug" : "info";
}

/**
 * A method's implementation inside the call policy: what both servers call. A unary method's
 * answers one message, at once (a handler that needed no I/O: VerifyToken) or as a promise; a
 * server-streaming method's yields its messages.
 */
export type PolicyHandler = (request: unknown, ctx: HandlerContext) => unknown;

type AnyStream = (request: unknown, ctx: HandlerContext) => AsyncIterable<unknown>;

type AnyUnary = (request: unknown, ctx: HandlerContext) => unknown;
type AnyObserver = (request: unknown, response: unknown, failure: string | undefined) => void;
/**
 * Refuses a caller the method's declared access does not admit (throws an AppError); answers
 * "loopback-dev" when it admits the development exemption.
 */
type AccessCheck = (ctx: HandlerContext, caller: ServiceCaller | undefined) => CallerName | undefined | Promise<CallerName | undefined>;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** One method of `impl`, wrapped in the call policy, with its per-RPC metrics (if any) observed. */
export function withPolicy<S extends DescService>(method: DescMethod, impl: ServiceImpl<S>, rpcMetrics: RpcMetrics<S>, deps: PolicyDeps): PolicyHandler {
  const handler = (impl as Record<string, AnyUnary | undefined>)[method.localName];
  // ServiceImpl<S> makes this unreachable; a cast elsewhere would fail here, at start-up.
  if (typeof handler !== "function") throw new Error(`${method.parent.typeName}/${method.name} has no implementation`);
  const metric = (rpcMetrics as Record<string, OutcomeMetric<DescMethod> | undefined>)[method.localName];
  const observe = metric?.(deps.metrics, method) as AnyObserver | undefined;
  const access = methodAccess(method);
  const check = accessCheck(access, deps.callers, deps.adminAccess);
  if (method.methodKind === "server_streaming") return traceable(method, wrapStream(method, handler.bind(impl) as unknown as AnyStream, check, deps), deps);
  if (method.methodKind !== "unary") throw new Error(`${method.parent.typeName}/${method.name}: ${method.methodKind} RPCs are not supported`);
  return traceable(method, wrap(method, handler.bind(impl), observe, check, successLevel(method, access), deps), deps);
}

/** With tracing on, the policy inside a span per call (tracing.ts); off, the policy as it is. */
function traceable(method: DescMethod, handler: PolicyHandler, { tracing }: PolicyDeps): PolicyHandler {
  return tracing === undefined ? handler : traced(method, handler, tracing);
}

/**
 * The policy of a server-streaming method: the same access check, request id and string check
 * before the first message, and one log line and metric when the stream ends (with how many
 * messages it sent). No server-side deadline: a stream lasts until the client leaves, the
 * handler returns or the server shuts down.
 */
function wrapStream(method: DescMethod, handler: AnyStream, checkAccess: AccessCheck | undefined, { callers, logger, metrics }: PolicyDeps): PolicyHandler {
  const rpc = `${method.parent.typeName}/${method.name}`;
  const checkStrings = compileStringCheck(method.input);
  return async function* (request, ctx) {
    const started = performance.now();
    const requestId = answerRequestId(ctx);
    let status = "OK";
    let messages = 0;
    let caller: ServiceCaller | undefined;
    let exemption: CallerName | undefined;
    try {
      caller = resolveServiceCaller(ctx, callers);
      const admitted = checkAccess?.(ctx, caller);
      exemption = admitted instanceof Promise ? await admitted : admitted;
      refuseUnstorable(checkStrings, request);
      for await (const message of handler(request, ctx)) {
        messages++;
        yield message;
      }
    } catch (err) {
      const error = toConnectError(err);
      status = Code[error.code];
      const severe = error.code === Code.Internal;
      if (logger.isLevelEnabled(severe ? "error" : "info")) {
        const fields = { rpc, protocol: ctx.protocolName, status, ms: elapsed(started), messages, requestId, caller: callerName(ctx, caller, exemption), peer: callInfo(ctx).peerAddress, reason: err instanceof AppError ? err.reason : undefined, detail: err instanceof Error ? err.message : String(err) };
        if (severe) logger.error({ ...fields, err }, "stream failed");
        else logger.info(fields, "stream");
      }
      throw error;
    } finally {
      // The client left (the server stopped asking for messages): not an error of ours.
      if (status === "OK" && ctx.signal.aborted) status = "CANCELLED";
      const labels = { service: method.parent.typeName, method: method.name, code: status, transport: ctx.protocolName, caller: callerName(ctx, caller, exemption) };
      metrics.rpcs.inc(labels);
      metrics.rpcSeconds.observe(labels, (performance.now() - started) / 1000);
      if ((status === "OK" || status === "CANCELLED") && logger.isLevelEnabled("info")) logger.info({ rpc, protocol: ctx.protocolName, status, ms: elapsed(started), messages, requestId, caller: callerName(ctx, caller, exemption) }, "stream");
    }
  };
}

/** The call's request id (the client's, when well formed, else a new one), echoed in the response. */
function answerRequestId(ctx: HandlerContext): string {
  const offered = callInfo(ctx).header("x-request-id");
  const requestId = offered !== undefined && REQUEST_ID.test(offered) ? offered : randomUUID();
  setResponseHeader(ctx, "x-request-id", requestId);
  return requestId;
}

/** The client's request id, when it sent a well-formed one, echoed in the response; else undefined. */
function offeredRequestId(ctx: HandlerContext): string | undefined {
  const offered = callInfo(ctx).header("x-request-id");
  if (offered === undefined || !REQUEST_ID.test(offered)) return undefined;
  setResponseHeader(ctx, "x-request-id", offered);
  return offered;
}

/** Before the handler: U+0000 reached PostgreSQL and came back as INTERNAL (issue 10, item 6). */
function refuseUnstorable(checkStrings: ReturnType<typeof compileStringCheck>, request: unknown): void {
  const violations = checkStrings?.(request);
  if (violations) {
    throw new AppError("INVALID_ARGUMENT", `unstorable characters in: ${violations.map((v) => v.field).join(", ")}`, { violations });
  }
}

/**
 * The caller a log line and the metrics name: the service's name; "user" when a handler noted a
 * person (callUserKey); "loopback-dev" for the development exemption; else "anonymous".
 */
function callerName(ctx: HandlerContext, service: ServiceCaller | undefined, exemption: CallerName | undefined): CallerName {
  if (service !== undefined) return service.name;
  if (ctx.values.get(callUserKey) !== undefined) return "user";
  return exemption ?? "anonymous";
}

/**
 * The call's service caller, resolved once for every RPC before anything else: from
 * `x-service-key`, else `authorization: Bearer isk_...` (a service key; a JWT there is a person's
 * token and left to the handler), else the verified client certificate. A presented key that
 * names no caller that may call throws SERVICE_KEY_INVALID whatever the RPC: a backend with a dead
 * key fails loudly instead of calling anonymously. A certificate naming no account is no caller.
 * Warm, a key costs one Map lookup (directory.ts); no allocation here.
 */
function resolveServiceCaller(ctx: HandlerContext, callers: Callers): ServiceCaller | undefined {
  const caller = serviceCallerOf(callInfo(ctx), callers);
  if (caller !== undefined) ctx.values.set(serviceCallerKey, caller);
  return caller;
}

/** resolveServiceCaller without a handler context: the HTTP endpoints (/authz, /oauth2/introspect) resolve with it. */
export function serviceCallerOf(info: CallInfo, callers: Callers): ServiceCaller | undefined {
  let key = info.header("x-service-key");
  if (key === undefined || key === "") key = serviceKeyOfBearer(info.header("authorization"));
  return key !== undefined ? callers.serviceByKey(key) : certificateCaller(info, callers);
}

/**
 * Admits `caller` (resolved from `info`) to what needs `permission`, as an internal RPC's access
 * does: throws SERVICE_KEY_REQUIRED or PERMISSION_MISSING; answers "loopback-dev" for the
 * development exemption.
 */
export function admitService(info: CallInfo, caller: ServiceCaller | undefined, permission: string, callers: Callers): CallerName | undefined {
  if (caller === undefined) {
    if (callers.allowLoopbackWithoutKey && isLoopback(info.peerAddress)) return LOOPBACK_DEV;
    throw new AppError("SERVICE_KEY_REQUIRED", "internal RPC called without a service credential");
  }
  if (!caller.permissions.has(permission)) throw new AppError("PERMISSION_MISSING", `${caller.name} lacks ${permission}`);
  return undefined;
}

function certificateCaller(info: CallInfo, callers: Callers): ServiceCaller | undefined {
  const certificate = info.clientCertificate?.();
  return certificate && callers.serviceByCertificate(certificate);
}

const BEARER_SERVICE_KEY = /^bearer\s+(isk_\S+)\s*$/i;

/** The service key of an `authorization: Bearer isk_...` header, else undefined. */
function serviceKeyOfBearer(value: string | undefined): string | undefined {
  if (value === undefined || value.length < 11 || value.indexOf("isk_") < 0) return undefined;
  return BEARER_SERVICE_KEY.exec(value)?.[1];
}

/** Who called, for the log line and the metrics' bounded `caller` label. */
type CallerName = string;
const LOOPBACK_DEV: CallerName = "loopback-dev";

/**
 * The check a method's declared access needs, built once at start-up; undefined when there is
 * nothing to check before the handler.
 * - AUDIENCE_PUBLIC: anyone.
 * - AUDIENCE_USER: the handler authenticates the person itself (SignedInRpcs.caller), since it
 *   needs the caller anyway; nothing to add here.
 * - AUDIENCE_INTERNAL: a service caller holding the permission, or (development only) a loopback
 *   peer without any credential: then it answers "loopback-dev" for the log line.
 * - AUDIENCE_ADMIN: see admitAdmin. No loopback exemption: administration always names its actor.
 */
function accessCheck(access: MethodAccess, callers: Callers, adminAccess: AdminAccessSettings | undefined): AccessCheck | undefined {
  const { permission } = access;
  if (access.audience === Audience.ADMIN) return (ctx, caller) => admitAdmin(ctx, caller, permission, callers, adminAccess);
  if (access.audience !== Audience.INTERNAL) return undefined;
  return (ctx, caller) => admitService(callInfo(ctx), caller, permission, callers);
}

/**
 * Admits an AUDIENCE_ADMIN call and notes its actor for the handler (adminActorKey):
 * - a service caller holding `permission`, on the gRPC port only: the web gateway serves
 *   administration to people, never to a service credential (PERMISSION_MISSING there), as it
 *   serves no internal RPC;
 * - else the person behind the bearer token (AUTHENTICATION_REQUIRED, ACCESS_TOKEN_INVALID), whose
 *   stored role is in ADMIN_ROLES (ADMIN_ROLE_REQUIRED) and whose token proves a second factor
 *   (amr `mfa`) with an auth_time within ADMIN_MAX_AUTH_AGE_SECONDS (STEP_UP_REQUIRED).
 */
async function admitAdmin(ctx: HandlerContext, caller: ServiceCaller | undefined, permission: string, callers: Callers, settings: AdminAccessSettings | undefined): Promise<undefined> {
  if (caller !== undefined) {
    if (callInfo(ctx).gateway === true) throw new AppError("PERMISSION_MISSING", `${caller.name}: service credentials administer on the gRPC port only`);
    if (!caller.permissions.has(permission)) throw new AppError("PERMISSION_MISSING", `${caller.name} lacks ${permission}`);
    ctx.values.set(adminActorKey, { kind: "service", name: caller.name });
    return undefined;
  }
  const person = await authenticate(ctx, callers);
  const role = settings && (await settings.liveRole(person.userId));
  if (settings === undefined || role === undefined) {
    if (settings !== undefined) throw new AppError("ACCESS_TOKEN_INVALID", `account ${person.userId} is not active`);
    throw new AppError("ADMIN_ROLE_REQUIRED", "no person may administer here");
  }
  if (!settings.roles.administers(role)) throw new AppError("ADMIN_ROLE_REQUIRED", `${person.userId} holds ${role}, not an administrator's role`);
  const ageSec = settings.clock.now().getTime() / 1000 - person.claims.authTime;
  if (!person.amr.includes(SECOND_FACTOR_AMR) || ageSec > settings.maxAuthAgeSec) {
    throw new AppError("STEP_UP_REQUIRED", `${person.userId}: second factor ${person.amr.includes(SECOND_FACTOR_AMR) ? `${Math.round(ageSec)} s old` : "not proven"}`);
  }
  ctx.values.set(adminActorKey, { kind: "user", userId: person.userId, role, sessionId: person.sessionId });
  return undefined;
}

function wrap(
  method: DescMethod,
  handler: AnyUnary,
  observe: AnyObserver | undefined,
  checkAccess: AccessCheck | undefined,
  level: Level,
  { callers, logger, metrics, maxDeadlineMs, accessLogSampleRate = 0 }: PolicyDeps,
): PolicyHandler {
  const rpc = `${method.parent.typeName}/${method.name}`;
  // A hot method's success is logged at `level` (debug), and a sampled fraction at info; another
  // method's at info, every one.
  const sampleRate = level === "info" ? 0 : accessLogSampleRate;
  const service = method.parent.typeName;
  const name = method.name;
  // Compiled once per method; undefined when the request holds no string.
  const checkStrings = compileStringCheck(method.input);
  // Labelled children looked up once per (code, transport, caller), not hashed from labels per
  // call. `caller` is bounded: account and bootstrap names, "user", "loopback-dev", "anonymous".
  const series = new Map<string, { count: { inc(): void }; seconds: { observe(value: number): void } }>();
  const seriesOf = (code: string, transport: string, caller: CallerName) => {
    const key = `${code}|${transport}|${caller}`;
    let found = series.get(key);
    if (!found) {
      const labels = { service, method: name, code, transport, caller };
      found = { count: metrics.rpcs.labels(labels), seconds: metrics.rpcSeconds.labels(labels) };
      series.set(key, found);
    }
    return found;
  };
  // A hot method (see successLevel) makes no request id of its own for a success nobody logs:
  // it echoes the caller's, and makes one when the call fails or its line is written.
  const hot = level !== "info";
  return (request, ctx) => {
    const started = performance.now();
    let requestId = hot ? offeredRequestId(ctx) : answerRequestId(ctx);
    const idForLog = (): string => (requestId ??= answerRequestId(ctx));
    let caller: ServiceCaller | undefined;
    let exemption: CallerName | undefined;

    const finish = (status: string): void => {
      const { count, seconds } = seriesOf(status, ctx.protocolName, callerName(ctx, caller, exemption));
      count.inc();
      seconds.observe((performance.now() - started) / 1000);
    };
    const succeed = (response: unknown): unknown => {
      // The log object is built only when a line is written: nothing allocated on a hot success.
      if (sampleRate > 0 && Math.random() < sampleRate && logger.isLevelEnabled("info")) {
        logger.info({ rpc, protocol: ctx.protocolName, status: "OK", ms: elapsed(started), requestId: idForLog(), caller: callerName(ctx, caller, exemption), userId: ctx.values.get(callUserKey), sampleRate }, "rpc");
      } else if (logger.isLevelEnabled(level)) {
        logger[level]({ rpc, protocol: ctx.protocolName, status: "OK", ms: elapsed(started), requestId: idForLog(), caller: callerName(ctx, caller, exemption), userId: ctx.values.get(callUserKey) }, "rpc");
      }
      observe?.(request, response, undefined);
      finish("OK");
      return response;
    };
    /** Logs and counts a failed call; answers the error to send. */
    const failure = (err: unknown): Error => {
      const error = toConnectError(err);
      const status = Code[error.code];
      const failure = err instanceof AppError ? err.reason : status;
      observeFailure(metrics, name, failure);
      observe?.(request, undefined, failure);
      const severe = error.code === Code.Internal || error.code === Code.Unavailable;
      const id = idForLog();
      if (logger.isLevelEnabled(severe ? "error" : "info")) {
        const fields = {
          rpc,
          protocol: ctx.protocolName,
          status,
          ms: elapsed(started),
          requestId: id,
          caller: callerName(ctx, caller, exemption),
          userId: ctx.values.get(callUserKey),
          peer: callInfo(ctx).peerAddress,
          reason: err instanceof AppError ? err.reason : undefined,
          detail: err instanceof Error ? err.message : String(err),
        };
        if (severe) logger.error({ ...fields, err }, "rpc failed");
        else logger.info(fields, "rpc");
      }
      finish(status);
      return error;
    };

    const run = (): unknown => {
      refuseUnstorable(checkStrings, request);
      return handler(request, ctx);
    };
    let result: unknown;
    try {
      // Who before what: an unadmitted caller learns nothing about its request.
      caller = resolveServiceCaller(ctx, callers);
      // Synchronous for every audience but AUDIENCE_ADMIN (a person's token is verified then).
      const admitted = checkAccess?.(ctx, caller);
      if (admitted instanceof Promise) {
        result = admitted.then((name) => {
          exemption = name;
          return run();
        });
      } else {
        exemption = admitted;
        result = run();
      }
    } catch (err) {
      return Promise.reject(failure(err));
    }
    // A handler that answered at once (VerifyToken: everything it needs is in memory) is answered
    // at once: no promise, no deadline to watch.
    if (!isThenable(result)) return succeed(result);
    const budget = Math.min(ctx.timeoutMs() ?? maxDeadlineMs, maxDeadlineMs);
    return withDeadline(result, budget, () => new AppError("DEADLINE_EXCEEDED", `${rpc} exceeded ${budget} ms`)).then(succeed, (err: unknown) => {
      throw failure(err);
    });
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/**
 * Server-side deadlines without a timer per call: calls in flight sit in one set that a single
 * sweep checks every DEADLINE_SWEEP_MS, so a call is cut off at most that much after its budget.
 */
const DEADLINE_SWEEP_MS = 50;
const inFlight = new Set<{ readonly at: number; readonly expire: () => void }>();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  const now = Date.now();
  for (const call of inFlight) {
    if (call.at <= now) {
      inFlight.delete(call);
      call.expire();
    }
  }
  if (inFlight.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function withDeadline<T>(work: T | Promise<T>, budgetMs: number, error: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const call = { at: Date.now() + budgetMs, expire: () => reject(error()) };
    inFlight.add(call);
    if (!sweeper) {
      sweeper = setInterval(sweep, DEADLINE_SWEEP_MS);
      sweeper.unref();
    }
    Promise.resolve(work).then(
      (value) => {
        inFlight.delete(call);
        resolve(value);
      },
      (err: unknown) => {
        inFlight.delete(call);
        reject(err);
      },
    );
  });
}

/** Refusals counted in identity_rate_limited_total{method="<Rpc>",reason}, whichever RPC answers them. */
const LIMIT_REFUSALS: ReadonlySet<string> = new Set<ErrorReason>(["RATE_LIMITED", "OVERLOADED"]);
const REFRESH_TOKEN_REUSED: ErrorReason = "REFRESH_TOKEN_REUSED";

/** Failures counted whichever RPC answers them. */
function observeFailure(metrics: Metrics, method: string, failure: string): void {
  if (LIMIT_REFUSALS.has(failure)) metrics.rateLimited.inc({ method, reason: failure });
  if (failure === REFRESH_TOKEN_REUSED) metrics.refreshTokenReuse.inc();
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
