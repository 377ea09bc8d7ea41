// OpenTelemetry tracing, off unless an OTLP endpoint is configured (config.ts, TracingConfig).
// When off nothing here runs and the SDK is not even loaded (tracing-sdk.ts is imported only by
// startTracing): the call policy (services/policy.ts) and the database (db/tracing.ts) are not
// wrapped and the logger has no mixin, so the VerifyToken hot path makes no span, no context and
// no allocation for tracing. This file imports OpenTelemetry's types only.
//
// Nothing is registered globally (no global tracer provider, context manager or propagator): a
// process may hold several service instances (the tests do), each with its own provider. The
// active span travels in one AsyncLocalStorage of this module: the RPC span is entered around
// the call (services/tracing.ts) and read by the database spans, the log lines and the SMS
// webhook's request.
import { AsyncLocalStorage } from "node:async_hooks";
import type { Context, Span, Tracer } from "@opentelemetry/api";
import type { TracingConfig } from "./config.js";

export interface Tracing {
  readonly tracer: Tracer;
  /** The caller's trace context from its `traceparent` (and `tracestate`) header, else the root context. */
  extract(header: (name: string) => string | undefined): Context;
  /** The context whose parent is `span`, for starting its children. */
  childContext(span: Span): Context;
  /** Exports the spans ended so far (tests; shutdown does it too). */
  flush(): Promise<void>;
  /** Exports what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

/** Loads the SDK (only now) and starts the tracer provider with its OTLP/HTTP exporter. */
export async function startTracing(config: TracingConfig, version: string): Promise<Tracing> {
  const { startTracingSdk } = await import("./tracing-sdk.js");
  return startTracingSdk(config, version);
}

const active = new AsyncLocalStorage<Span>();

/** The span of the call being served here, if tracing is on and a call is. */
export function activeSpan(): Span | undefined {
  return active.getStore();
}

/** Runs `work` with `span` active: database spans become its children, log lines carry its ids. */
export function runInSpan<R>(span: Span, work: () => R): R {
  return active.run(span, work);
}

/**
 * The pino mixin of a traced service (logger.ts): the active span's ids in every line, as the
 * OpenTelemetry log data model names them (trace_id, span_id, trace_flags). A new object each
 * time: pino merges the line's own fields into it.
 */
export function traceLogFields(): Record<string, string> {
  const span = active.getStore();
  if (span === undefined) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  return { trace_id: traceId, span_id: spanId, trace_flags: hexByte(traceFlags) };
}

/**
 * Passes the active call's trace on (W3C `traceparent`, `tracestate`) in the headers of an HTTP
 * request this service makes for it (the SMS webhook); outside a traced call, nothing.
 */
export function injectTraceContext(headers: Record<string, string>): void {
  const span = active.getStore();
  if (span === undefined) return;
  const { traceId, spanId, traceFlags, traceState } = span.spanContext();
  headers.traceparent = `00-${traceId}-${spanId}-${hexByte(traceFlags)}`;
  const state = traceState?.serialize();
  if (state) headers.tracestate = state;
}

function hexByte(value: number): string {
  return (value & 0xff).toString(16).padStart(2, "0");
}
