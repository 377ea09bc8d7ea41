// The OpenTelemetry SDK behind src/tracing.ts, loaded by startTracing only when tracing is on
// (its modules cost start-up time and memory a service without tracing should not pay).
import { ROOT_CONTEXT, trace, type TextMapGetter } from "@opentelemetry/api";
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
import type { Tracing } from "./tracing.js";

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
export function startTracingSdk(config: TracingConfig, version: string): Tracing {
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
    childContext: (span) => trace.setSpan(ROOT_CONTEXT, span),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
