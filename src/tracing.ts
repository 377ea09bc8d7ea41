// OpenTelemetry tracing, off unless an OTLP endpoint is configured (config.ts, TracingConfig).
// When off nothing here runs: the call policy (services/policy.ts) and the database
// (db/tracing.ts) are not wrapped and the logger has no mixin, so the VerifyToken hot path
// makes no span, no context and no allocation for tracing.
//
// Nothing is registered globally (no global tracer provider, context manager or propagator): a
// process may hold several service instances (the tests do), each with its own provider. The
// active span travels in one AsyncLocalStorage of this module: the RPC span is entered around
// the call (services/tracing.ts) and read by the database spans and by the log lines.
import { AsyncLocalStorage } from "node:async_hooks";
import { defaultTextMapSetter, ROOT_CONTEXT, trace, type Context, type Span, type TextMapGetter, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { TracingConfig } from "./config.js";

export interface Tracing {
  readonly tracer: Tracer;
  /** The caller's trace context from its `traceparent` (and `tracestate`) header, else the root context. */
  extract(header: (name: string) => string | undefined): Context;
  /** Exports the spans ended so far (tests; shutdown does it too). */
  flush(): Promise<void>;
  /** Exports what is buffered and stops exporting. */
  shutdown(): Promise<void>;
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
  return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}`.slice(-2) };
}

const propagator = new W3CTraceContextPropagator();
type HeaderReader = (name: string) => string | undefined;
const headerGetter: TextMapGetter<HeaderReader> = {
  get: (read, key) => read(key),
  keys: () => ["traceparent", "tracestate"],
};

function samplerOf({ root, parentBased, ratio }: TracingConfig["sampler"]): Sampler {
  const decision = root === "always_on" ? new AlwaysOnSampler() : root === "always_off" ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return parentBased ? new ParentBasedSampler({ root: decision }) : decision;
}

/** Starts the tracer provider and its OTLP/HTTP exporter (JSON bodies). */
export function startTracing(config: TracingConfig, version: string): Tracing {
  const exporter = new OTLPTraceExporter({ url: config.tracesUrl, headers: { ...config.headers }, timeoutMillis: config.timeoutMs });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: version }),
    sampler: samplerOf(config.sampler),
    // The exporter's package types its exporter against @opentelemetry/sdk-trace, the
    // provider against sdk-trace-base: the same interface, two declarations.
    spanProcessors: [new BatchSpanProcessor(exporter as unknown as SpanExporter, { scheduledDelayMillis: config.scheduleDelayMs })],
  });
  return {
    tracer: provider.getTracer("grpc-identity", version),
    extract: (header) => {
      if (header("traceparent") === undefined) return ROOT_CONTEXT;
      return propagator.extract(ROOT_CONTEXT, header, headerGetter);
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Passes the active call's trace on (W3C `traceparent`, `tracestate`) in the headers of an HTTP
 * request this service makes for it (the SMS webhook); outside a traced call, nothing.
 */
export function injectTraceContext(headers: Record<string, string>): void {
  const span = active.getStore();
  if (span !== undefined) propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
}

/** The context whose parent is `span`, for starting its children. */
export function contextOf(span: Span): Context {
  return trace.setSpan(ROOT_CONTEXT, span);
}
