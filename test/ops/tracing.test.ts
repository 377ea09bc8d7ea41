// OpenTelemetry tracing, end to end: a real OTLP/HTTP receiver (a small server on port 0 that
// decodes the JSON export) gets a server span per RPC, whose parent is the caller's W3C
// traceparent on both servers, with a client span per SQL statement under it, none holding a
// secret; the log lines of the call carry its trace id. With OTEL_SDK_DISABLED the same service
// exports nothing and its log lines have no trace id.
import { spawnSync } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { startWebhook } from "../support/delivery-servers.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { prepared, setupService } from "../support/setup.js";

interface Attribute {
  readonly key: string;
  readonly value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
interface ExportedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Attribute[];
  readonly status?: { code?: number; message?: string };
  /** From the resource the span was exported with. */
  readonly serviceName: string | undefined;
}

interface Receiver {
  readonly url: string;
  readonly spans: ExportedSpan[];
  readonly requests: number;
  /** Every request body, as received: to look for secrets in what leaves the process. */
  readonly bodies: string[];
  close(): Promise<void>;
}

/** An OTLP/HTTP receiver: POST /v1/traces with ExportTraceServiceRequest as JSON. */
async function startReceiver(): Promise<Receiver> {
  const spans: ExportedSpan[] = [];
  const bodies: string[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests++;
      const body = Buffer.concat(chunks).toString("utf8");
      bodies.push(body);
      if (req.method !== "POST" || req.url !== "/v1/traces" || !String(req.headers["content-type"]).startsWith("application/json")) {
        res.writeHead(415).end();
        return;
      }
      const parsed = JSON.parse(body) as {
        resourceSpans?: Array<{ resource?: { attributes?: Attribute[] }; scopeSpans?: Array<{ spans?: Array<Omit<ExportedSpan, "serviceName">> }> }>;
      };
      for (const resourceSpans of parsed.resourceSpans ?? []) {
        const serviceName = resourceSpans.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue;
        for (const scope of resourceSpans.scopeSpans ?? []) for (const span of scope.spans ?? []) spans.push({ ...span, serviceName });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    bodies,
    get requests() {
      return requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function attribute(span: ExportedSpan, key: string): string | number | boolean | undefined {
  const value = span.attributes.find((a) => a.key === key)?.value;
  if (value === undefined) return undefined;
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.boolValue;
}

async function eventually<T>(find: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

/** A caller's trace context: a fresh trace id and its own (client) span id. */
function callerContext() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

describe("with an OTLP endpoint", () => {
  const receiver = prepared(startReceiver, (r) => r.close());
  const webhook = prepared(startWebhook, (server) => server.close());
  const t = setupService(() => ({
    env: {
      OTP_SMS_PROVIDER: "webhook",
      SMS_WEBHOOK_URL: webhook().url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver().url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "identity-under-test",
      OTEL_BSP_SCHEDULE_DELAY: "50",
    },
  }));

  it.each(["grpc", "connect", "grpc-web"] as const)("exports a span per RPC (parent: the caller's traceparent, over %s) with a span per SQL statement under it", async (transport) => {
    const caller = callerContext();
    const password = `a secret passphrase ${randomBytes(6).toString("hex")}`;
    const email = `traced-${transport}-${randomBytes(4).toString("hex")}@example.com`;
    const { auth } = t.clients(transport);
    await auth.signUp({ email, password }, { headers: { traceparent: caller.traceparent, "x-request-id": `traced-${transport}` } });

    const rpc = await eventually(() => receiver().spans.find((s) => s.traceId === caller.traceId && s.kind === SPAN_KIND_SERVER), "the SignUp span");
    expect(rpc).toMatchObject({ name: "identity.v1.AuthService/SignUp", parentSpanId: caller.spanId, serviceName: "identity-under-test" });
    expect(attribute(rpc, "rpc.system")).toBe(transport === "connect" ? "connect_rpc" : "grpc");
    expect(attribute(rpc, "rpc.service")).toBe("identity.v1.AuthService");
    expect(attribute(rpc, "rpc.method")).toBe("SignUp");
    expect(attribute(rpc, "rpc.grpc.status_code")).toBe(0);
    expect(rpc.status?.code ?? 0).not.toBe(STATUS_ERROR);

    // The statements of the call, children of its span: the INSERT of the account among them.
    const queries = await eventually(() => {
      const found = receiver().spans.filter((s) => s.parentSpanId === rpc.spanId);
      return found.some((s) => attribute(s, "db.operation.name") === "INSERT") ? found : undefined;
    }, "the SignUp's SQL spans");
    for (const query of queries) {
      expect(query).toMatchObject({ traceId: caller.traceId, kind: SPAN_KIND_CLIENT });
      expect(attribute(query, "db.system.name")).toBe("postgresql");
      expect(String(attribute(query, "db.query.text"))).toMatch(/^\s*[A-Za-z]+/);
    }
    expect(queries.some((q) => /INSERT INTO "?users"?/i.test(String(attribute(q, "db.query.text"))))).toBe(true);
    // Statement texts only, never their parameters: neither the address nor the password left the process.
    await t.app.tracing!.flush();
    const exported = receiver().bodies.join("\n");
    expect(exported).not.toContain(password);
    expect(exported).not.toContain(email);

    // The call's log line carries the trace and span ids.
    const line = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === `traced-${transport}` && l.msg === "rpc");
    expect(line).toMatchObject({ trace_id: caller.traceId, span_id: rpc.spanId, level: "info" });
  });

  it("starts a trace of its own without a traceparent, and records a failed call's code", async () => {
    const { auth } = t.clients("grpc");
    const failure = await auth.whoAmI({}, { headers: { "x-request-id": "traced-unauthenticated" } }).then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(failure?.code).toBe(16);
    const line = await eventually(
      () => t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === "traced-unauthenticated"),
      "the log line",
    );
    expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    const span = await eventually(() => receiver().spans.find((s) => s.traceId === line.trace_id && s.kind === SPAN_KIND_SERVER), "the WhoAmI span");
    expect(span.parentSpanId || undefined).toBeUndefined();
    expect(span.name).toBe("identity.v1.AuthService/WhoAmI");
    // A refusal is the service doing its job: its code is recorded, the span is not an error.
    expect(attribute(span, "rpc.grpc.status_code")).toBe(16);
    expect(span.status?.code ?? 0).not.toBe(STATUS_ERROR);
  });

  it("makes a WatchRevocations stream one span, from its start to the client leaving", async () => {
    const caller = callerContext();
    const abort = new AbortController();
    const stream = t.clients("grpc").tokens.watchRevocations({}, {
      headers: { "x-service-key": TEST_SERVICE_KEY, traceparent: caller.traceparent, "x-request-id": "traced-watch" },
      signal: abort.signal,
    })[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value?.event.case).toBe("snapshot");
    // Open while it streams: the span ends with the stream.
    await t.app.tracing!.flush();
    expect(receiver().spans.some((s) => s.traceId === caller.traceId && s.kind === SPAN_KIND_SERVER)).toBe(false);
    abort.abort();
    await stream.next().catch(() => undefined);
    const span = await eventually(() => receiver().spans.find((s) => s.traceId === caller.traceId && s.kind === SPAN_KIND_SERVER), "the stream's span");
    expect(span).toMatchObject({ name: "identity.v1.TokenService/WatchRevocations", parentSpanId: caller.spanId });
    const line = await eventually(() => t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === "traced-watch"), "the stream's line");
    expect(line).toMatchObject({ msg: "stream", trace_id: caller.traceId, span_id: span.spanId });
  });

  it("passes the trace on to the SMS webhook it calls during a call", async () => {
    const caller = callerContext();
    await t.clients("connect").otp.sendOtp(
      { channel: OtpChannel.SMS, destination: "+14155550177", purpose: OtpPurpose.LOGIN },
      { headers: { traceparent: caller.traceparent } },
    );
    const span = await eventually(() => receiver().spans.find((s) => s.traceId === caller.traceId && s.kind === SPAN_KIND_SERVER), "the SendOtp span");
    expect(span.name).toBe("identity.v1.OtpService/SendOtp");
    const call = webhook().calls.find((c) => c.body.to === "+14155550177");
    expect(call?.traceparent).toBe(`00-${caller.traceId}-${span.spanId}-01`);
  });

  it("writes no trace id on lines outside a call", () => {
    const started = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "one-time code delivery");
    expect(started).toBeDefined();
    expect(started).not.toHaveProperty("trace_id");
  });
});

describe("with OTEL_SDK_DISABLED=true", () => {
  const receiver = prepared(startReceiver, (r) => r.close());
  const t = setupService(() => ({
    env: { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: receiver().url, OTEL_BSP_SCHEDULE_DELAY: "50" },
  }));

  it("starts no exporter: nothing is sent, and log lines have no trace id", async () => {
    expect(t.app.tracing).toBeUndefined();
    const caller = callerContext();
    await t.clients("grpc").auth.signUp({ username: "untraced", password: "a long enough passphrase" }, { headers: { traceparent: caller.traceparent, "x-request-id": "untraced-1" } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver().requests).toBe(0);
    const line = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === "untraced-1");
    expect(line).toMatchObject({ msg: "rpc", level: "info" });
    expect(line).not.toHaveProperty("trace_id");
  });
});

describe("with OTEL_* unset", () => {
  /**
   * Imports `modules` of the build (`npm test` builds dist/ first) in a process whose module
   * resolution refuses any @opentelemetry package: answers the process's exit code and stderr.
   */
  function importWithoutOpenTelemetry(modules: string[]): { status: number | null; stderr: string } {
    const hooks = `export async function resolve(specifier, context, next) {
      if (specifier.startsWith("@opentelemetry/")) throw new Error("OpenTelemetry loaded: " + specifier);
      return next(specifier, context);
    }`;
    const script = [
      `import { register } from "node:module";`,
      `register("data:text/javascript,${encodeURIComponent(hooks)}");`,
      ...modules.map((m) => `await import(${JSON.stringify(new URL(`../../dist/src/${m}`, import.meta.url).href)});`),
    ].join("\n");
    const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    return { status: result.status, stderr: result.stderr };
  }

  it("loads no OpenTelemetry module: the SDK is imported only when tracing starts", () => {
    // Everything main.ts builds a service from, with the tracing wrappers' own files.
    const off = importWithoutOpenTelemetry(["app.js", "logger.js", "config.js", "tracing.js", "services/tracing.js", "db/tracing.js", "delivery/sms-webhook.js"]);
    expect(off.stderr).toBe("");
    expect(off.status).toBe(0);
    // The check itself works: the SDK's module is refused.
    const on = importWithoutOpenTelemetry(["tracing-sdk.js"]);
    expect(on.status).not.toBe(0);
    expect(on.stderr).toContain("OpenTelemetry loaded: @opentelemetry/");
  });
});

describe("the OTEL_* variables", () => {
  const base = { NODE_ENV: "test" };
  it("are off without an endpoint, or when disabled", () => {
    expect(loadConfig({ ...base, OTEL_SERVICE_NAME: "x" }).tracing).toBeUndefined();
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).tracing).toBeUndefined();
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }).tracing).toBeUndefined();
  });

  it("follow the specification: endpoints, headers, resource and sampler", () => {
    const tracing = loadConfig({
      ...base,
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc,x-tenant=one",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-tenant=two",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=staging,service.name=from-resource",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
    }).tracing;
    expect(tracing).toMatchObject({
      tracesUrl: "http://collector:4318/v1/traces",
      headers: { authorization: "Bearer abc", "x-tenant": "two" },
      serviceName: "from-resource",
      resourceAttributes: { "deployment.environment.name": "staging" },
      sampler: { root: "traceidratio", parentBased: true, ratio: 0.25 },
    });
    // The signal's own endpoint is used as it is; the default sampler follows the caller.
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://c.example/otlp/traces", OTEL_EXPORTER_OTLP_ENDPOINT: "http://ignored:4318" }).tracing).toMatchObject({
      tracesUrl: "https://c.example/otlp/traces",
      serviceName: "identity",
      sampler: { root: "always_on", parentBased: true },
    });
  });

  it("refuse what this build cannot do, without quoting a header", () => {
    expect(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(/http\/json/);
    expect(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must be an http/);
    expect(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_SAMPLER: "sometimes" })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_HEADERS: "authorization=%E0%A4%A" })).toThrow(/^(?!.*%E0).*authorization/);
  });
});
