// Cross-cutting behaviour of every RPC, applied once to each ServiceImpl so both servers get
// exactly the same: a request id, a server-side deadline, error mapping, metrics and one log
// line per call.
import { randomUUID } from "node:crypto";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { OtpChannel } from "../../gen/identity/v1/common_pb.js";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { AppError } from "../domain/errors.js";
import { callInfo, callUserKey, setResponseHeader } from "./call.js";
import { toConnectError } from "./errors.js";
import { compileStringCheck } from "./request-strings.js";

export interface PolicyDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxDeadlineMs: number;
}

type AnyUnary = (request: unknown, ctx: HandlerContext) => unknown;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export function withPolicy<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, deps: PolicyDeps): Partial<ServiceImpl<S>> {
  const wrapped: Record<string, AnyUnary> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, AnyUnary | undefined>)[method.localName];
    wrapped[method.localName] = wrap(method, handler?.bind(impl), deps);
  }
  return wrapped as Partial<ServiceImpl<S>>;
}

function wrap(method: DescMethod, handler: AnyUnary | undefined, { logger, metrics, maxDeadlineMs }: PolicyDeps): AnyUnary {
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
      if (!handler) throw new AppError("NOT_IMPLEMENTED", `${rpc} is not implemented yet`);
      // Before the handler: U+0000 reached PostgreSQL and came back as INTERNAL (issue 10, item 6).
      const violations = checkStrings?.(request);
      if (violations) {
        throw new AppError("INVALID_ARGUMENT", `unstorable characters in: ${violations.map((v) => v.field).join(", ")}`, { violations });
      }
      const budget = Math.min(ctx.timeoutMs() ?? maxDeadlineMs, maxDeadlineMs);
      const response = await withDeadline(handler(request, ctx), budget, () => new AppError("DEADLINE_EXCEEDED", `${rpc} exceeded ${budget} ms`));
      logger.info({ rpc, protocol: ctx.protocolName, status, ms: elapsed(started), requestId, userId: ctx.values.get(callUserKey) }, "rpc");
      observeOutcome(metrics, name, request, response, undefined);
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
      observeOutcome(metrics, name, request, undefined, err instanceof AppError ? err.reason : status);
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

const SIGN_IN_METHODS = new Set(["Login", "VerifyOtp", "VerifyMfa"]);
/** VerifyToken results by reason, per registry (tests run several services in one process). */
const verificationSeries = new WeakMap<Metrics, Map<string, { inc(): void }>>();

/** Domain counters that follow from an RPC's outcome alone. */
function observeOutcome(metrics: Metrics, method: string, request: unknown, response: unknown, failure: string | undefined): void {
  if (failure === "RATE_LIMITED" || failure === "OVERLOADED") metrics.rateLimited.inc({ limit: `${method}:${failure}` });
  if (failure === "REFRESH_TOKEN_REUSED") metrics.refreshTokenReuse.inc();
  if (SIGN_IN_METHODS.has(method)) {
    const result = (response as { result?: { case?: string } } | undefined)?.result?.case;
    const outcome = failure ?? (result === "mfaChallenge" ? "mfa_required" : "success");
    metrics.logins.inc({ outcome: `${method}:${outcome}` });
  }
  if (method === "SendOtp" || method === "RequestPasswordReset") {
    const channel = OtpChannel[(request as { channel?: number }).channel ?? 0] ?? "UNSPECIFIED";
    metrics.otpSends.inc({ channel, result: failure === undefined ? "sent" : failure });
  }
  if (method === "VerifyToken" && response !== undefined) {
    const { active, reason } = response as { active: boolean; reason?: number };
    const result = active ? "active" : (InactiveReason[reason ?? 0] ?? "inactive");
    let series = verificationSeries.get(metrics);
    if (!series) verificationSeries.set(metrics, (series = new Map()));
    let counter = series.get(result);
    if (!counter) series.set(result, (counter = metrics.verifications.labels({ result })));
    counter.inc();
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
