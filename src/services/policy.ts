// Cross-cutting behaviour of every RPC, applied once to each method so both servers get exactly
// the same: the access its proto declares (access.ts), a request id, a server-side deadline,
// error mapping, metrics and one log line per call. Metrics particular to one RPC are declared beside it (rpc-metrics.ts) and observed here.
import { randomUUID } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { Audience } from "../../gen/identity/v1/access_pb.js";
import type { Callers } from "../domain/callers/callers.js";
import { AppError } from "../domain/errors.js";
import type { ErrorReason } from "../error-reasons.js";
import { methodAccess, type MethodAccess } from "./access.js";
import { callInfo, callUserKey, isLoopback, setResponseHeader } from "./call.js";
import { toConnectError } from "./errors.js";
import { compileStringCheck } from "./request-strings.js";
import type { OutcomeMetric, RpcMetrics } from "./rpc-metrics.js";

export interface PolicyDeps {
  readonly callers: Callers;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxDeadlineMs: number;
}

/**
 * A method's implementation inside the call policy: what both servers call. A unary method's
 * answers one message; a server-streaming method's yields its messages.
 */
export type PolicyHandler = (request: unknown, ctx: HandlerContext) => Promise<unknown> | AsyncIterable<unknown>;

type AnyStream = (request: unknown, ctx: HandlerContext) => AsyncIterable<unknown>;

type AnyUnary = (request: unknown, ctx: HandlerContext) => unknown;
type AnyObserver = (request: unknown, response: unknown, failure: string | undefined) => void;
/** Refuses a caller the method's declared access does not admit (throws an AppError). */
type AccessCheck = (ctx: HandlerContext) => void;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** One method of `impl`, wrapped in the call policy, with its per-RPC metrics (if any) observed. */
export function withPolicy<S extends DescService>(method: DescMethod, impl: ServiceImpl<S>, rpcMetrics: RpcMetrics<S>, deps: PolicyDeps): PolicyHandler {
  const handler = (impl as Record<string, AnyUnary | undefined>)[method.localName];
  // ServiceImpl<S> makes this unreachable; a cast elsewhere would fail here, at start-up.
  if (typeof handler !== "function") throw new Error(`${method.parent.typeName}/${method.name} has no implementation`);
  const metric = (rpcMetrics as Record<string, OutcomeMetric<DescMethod> | undefined>)[method.localName];
  const observe = metric?.(deps.metrics, method) as AnyObserver | undefined;
  const check = accessCheck(methodAccess(method), deps.callers);
  if (method.methodKind === "server_streaming") return wrapStream(method, handler.bind(impl) as unknown as AnyStream, check, deps);
  if (method.methodKind !== "unary") throw new Error(`${method.parent.typeName}/${method.name}: ${method.methodKind} RPCs are not supported`);
  return wrap(method, handler.bind(impl), observe, check, deps);
}

/**
 * The policy of a server-streaming method: the same access check, request id and string check
 * before the first message, and one log line and metric when the stream ends (with how many
 * messages it sent). No server-side deadline: a stream lasts until the client leaves, the
 * handler returns or the server shuts down.
 */
function wrapStream(method: DescMethod, handler: AnyStream, checkAccess: AccessCheck | undefined, { logger, metrics }: PolicyDeps): PolicyHandler {
  const rpc = `${method.parent.typeName}/${method.name}`;
  const checkStrings = compileStringCheck(method.input);
  return async function* (request, ctx) {
    const started = performance.now();
    const offered = callInfo(ctx).header("x-request-id");
    const requestId = offered !== undefined && REQUEST_ID.test(offered) ? offered : randomUUID();
    setResponseHeader(ctx, "x-request-id", requestId);
    let status = "OK";
    let messages = 0;
    try {
      checkAccess?.(ctx);
      const violations = checkStrings?.(request);
      if (violations) {
        throw new AppError("INVALID_ARGUMENT", `unstorable characters in: ${violations.map((v) => v.field).join(", ")}`, { violations });
      }
      for await (const message of handler(request, ctx)) {
        messages++;
        yield message;
      }
    } catch (err) {
      const error = toConnectError(err);
      status = Code[error.code];
      const fields = { rpc, protocol: ctx.protocolName, status, ms: elapsed(started), messages, requestId, peer: callInfo(ctx).peerAddress, reason: err instanceof AppError ? err.reason : undefined, detail: err instanceof Error ? err.message : String(err) };
      if (error.code === Code.Internal) logger.error({ ...fields, err }, "stream failed");
      else logger.info(fields, "stream");
      throw error;
    } finally {
      // The client left (the server stopped asking for messages): not an error of ours.
      if (status === "OK" && ctx.signal.aborted) status = "CANCELLED";
      const labels = { service: method.parent.typeName, method: method.name, code: status, transport: ctx.protocolName };
      metrics.rpcs.inc(labels);
      metrics.rpcSeconds.observe(labels, (performance.now() - started) / 1000);
      if (status === "OK" || status === "CANCELLED") logger.info({ rpc, protocol: ctx.protocolName, status, ms: elapsed(started), messages, requestId }, "stream");
    }
  };
}

/**
 * The check a method's declared access needs, built once at start-up; undefined when there is
 * nothing to check before the handler.
 * - AUDIENCE_PUBLIC: anyone.
 * - AUDIENCE_USER: the handler authenticates the person itself (SignedInRpcs.caller), since it
 *   needs the caller anyway; nothing to add here.
 * - AUDIENCE_INTERNAL: a service credential holding the permission. VerifyToken is the hot path:
 *   no allocation here, and the peer address is read only when no key is presented.
 */
function accessCheck(access: MethodAccess, callers: Callers): AccessCheck | undefined {
  if (access.audience !== Audience.INTERNAL) return undefined;
  const { permission } = access;
  return (ctx) => {
    const info = callInfo(ctx);
    const serviceKey = info.header("x-service-key");
    const keyless = serviceKey === undefined || serviceKey === "";
    callers.authorizeService(serviceKey, permission, keyless && isLoopback(info.peerAddress));
  };
}

function wrap(method: DescMethod, handler: AnyUnary, observe: AnyObserver | undefined, checkAccess: AccessCheck | undefined, { logger, metrics, maxDeadlineMs }: PolicyDeps): PolicyHandler {
  const rpc = `${method.parent.typeName}/${method.name}`;
  const service = method.parent.typeName;
  const name = method.name;
  // Compiled once per method; undefined when the request holds no string.
  const checkStrings = compileStringCheck(method.input);
  // Labelled children looked up once per (code, transport), not hashed from labels per call.
  const series = new Map<string, { count: { inc(): void }; seconds: { observe(value: number): void } }>();
  const seriesOf = (code: string, transport: string) => {
    const key = `${code}|${transport}`;
    let found = series.get(key);
    if (!found) {
      const labels = { service, method: name, code, transport };
      found = { count: metrics.rpcs.labels(labels), seconds: metrics.rpcSeconds.labels(labels) };
      series.set(key, found);
    }
    return found;
  };
  return async (request, ctx) => {
    const started = performance.now();
    const offered = callInfo(ctx).header("x-request-id");
    const requestId = offered !== undefined && REQUEST_ID.test(offered) ? offered : randomUUID();
    setResponseHeader(ctx, "x-request-id", requestId);
    let status = "OK";
    try {
      // Who before what: an unadmitted caller learns nothing about its request.
      checkAccess?.(ctx);
      // Before the handler: U+0000 reached PostgreSQL and came back as INTERNAL (issue 10, item 6).
      const violations = checkStrings?.(request);
      if (violations) {
        throw new AppError("INVALID_ARGUMENT", `unstorable characters in: ${violations.map((v) => v.field).join(", ")}`, { violations });
      }
      const budget = Math.min(ctx.timeoutMs() ?? maxDeadlineMs, maxDeadlineMs);
      const response = await withDeadline(handler(request, ctx), budget, () => new AppError("DEADLINE_EXCEEDED", `${rpc} exceeded ${budget} ms`));
      logger.info({ rpc, protocol: ctx.protocolName, status, ms: elapsed(started), requestId, userId: ctx.values.get(callUserKey) }, "rpc");
      observe?.(request, response, undefined);
      return response;
    } catch (err) {
      const error = toConnectError(err);
      status = Code[error.code];
      const fields = {
        rpc,
        protocol: ctx.protocolName,
        status,
        ms: elapsed(started),
        requestId,
        userId: ctx.values.get(callUserKey),
        peer: callInfo(ctx).peerAddress,
        reason: err instanceof AppError ? err.reason : undefined,
        detail: err instanceof Error ? err.message : String(err),
      };
      const failure = err instanceof AppError ? err.reason : status;
      observeFailure(metrics, name, failure);
      observe?.(request, undefined, failure);
      if (error.code === Code.Internal || error.code === Code.Unavailable) {
        logger.error({ ...fields, err }, "rpc failed");
      } else {
        logger.info(fields, "rpc");
      }
      throw error;
    } finally {
      const { count, seconds } = seriesOf(status, ctx.protocolName);
      count.inc();
      seconds.observe((performance.now() - started) / 1000);
    }
  };
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

/** Refusals counted in identity_rate_limited_total{limit="<Rpc>:<reason>"}, whichever RPC answers them. */
const LIMIT_REFUSALS: ReadonlySet<string> = new Set<ErrorReason>(["RATE_LIMITED", "OVERLOADED"]);
const REFRESH_TOKEN_REUSED: ErrorReason = "REFRESH_TOKEN_REUSED";

/** Failures counted whichever RPC answers them. */
function observeFailure(metrics: Metrics, method: string, failure: string): void {
  if (LIMIT_REFUSALS.has(failure)) metrics.rateLimited.inc({ limit: `${method}:${failure}` });
  if (failure === REFRESH_TOKEN_REUSED) metrics.refreshTokenReuse.inc();
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
