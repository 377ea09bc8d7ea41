// The measurements of issue 5 that h2load drives (transport, gateway, latency; flows.ts has
// Login and RefreshToken), in groups that `--only` can pick. Every one first checks with a
// real client that the call it is about to load succeeds with the expected answer.
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RevokeTokenRequestSchema, TokenService, VerifyTokenRequestSchema } from "../../gen/identity/v1/token_service_pb.js";
import type { Config } from "../../src/config.js";
import { BENCH_SERVICE_KEY, checkedVerify, connect, login, withBadSignature, type ServiceClients } from "./clients.js";
import { grpcFrame, h2load, type H2loadOptions, type H2loadResult } from "./h2load.js";
import { closedLoop, loginOp, loopProblems } from "./loops.js";
import { bestOfRounds, measuredOn, otherDetail, roundsDetail, type Best } from "./measure.js";
import { rssMiB } from "./procfs.js";
import type { Measurement } from "./report.js";
import type { TlsPair } from "./environment.js";

export interface Durations {
  /** Seconds of each throughput measurement, and how many interleaved rounds of them. */
  readonly measure: number;
  readonly rounds: number;
  /** Seconds of warm-up before each. */
  readonly warmup: number;
  /** Seconds of each latency measurement. */
  readonly latency: number;
  /** Seconds of the memory soak, and when its first reading is taken. */
  readonly soak: number;
  readonly soakFirstReading: number;
}

export interface BenchContext {
  readonly config: Config;
  readonly databaseUrl: string;
  readonly serviceGrpc: string;
  readonly serviceHttp: string;
  readonly serviceMetrics: string;
  readonly servicePid: number;
  readonly echoGrpc: string;
  readonly echoPid: number;
  readonly clients: ServiceClients;
  /** One account per concurrent worker. */
  readonly emails: readonly string[];
  readonly workDir: string;
  readonly durations: Durations;
  readonly record: (m: Measurement) => void;
  /** A key of a service account made with the CLI (environment.ts). */
  readonly namedKey: string;
  /** Starts (once) a TLS instance of the service and a TLS echo (environment.ts). */
  readonly startTls: () => Promise<TlsPair>;
  /** VerifyToken peaks, req/s, once measured. */
  verifyPeak?: number;
  verifyInvalidPeak?: number;
}

/** Served by echo-server.ts (its ECHO_PATH). */
export const ECHO_PATH = "/bench.v1.EchoService/Echo";

/** Accounts the run needs: one per concurrent worker of any loop. */
export const ACCOUNTS = 16;

export const GROUPS = ["transport", "gateway", "login", "refresh", "latency", "client", "soak"] as const;
export type Group = (typeof GROUPS)[number];

const GRPC_LOAD = { clients: 8, streams: 32 };
const GATEWAY_CLIENTS = 16;
const STORM_WORKERS = 16;
const STORM_VERIFY_RATE = 1_000;
const LATENCY_CLIENTS = 4;

interface VerifyTarget {
  /** gRPC request frames with the valid and the bad-signature token. */
  readonly body: Buffer;
  readonly invalidBody: Buffer;
  /** Response frame sizes h2load must receive for each. */
  readonly validBytes: number;
  readonly invalidBytes: number;
  readonly badToken: string;
}

/** A fresh session's access token (so it cannot expire mid-run), checked both ways. */
async function verifyTarget(ctx: BenchContext): Promise<VerifyTarget> {
  const { accessToken } = await login(ctx.clients, ctx.emails[0]!);
  const badToken = withBadSignature(accessToken);
  const validBytes = (await checkedVerify(ctx.clients, accessToken, true)).length + 5;
  const invalidBytes = (await checkedVerify(ctx.clients, badToken, false)).length + 5;
  const frame = (token: string) => grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token })));
  return { body: frame(accessToken), invalidBody: frame(badToken), validBytes, invalidBytes, badToken };
}

function grpcLoad(ctx: BenchContext, address: string, path: string, body: Buffer, expectedBodyBytes: number, scheme: "http" | "https" = "http", serviceKey = BENCH_SERVICE_KEY): Omit<H2loadOptions, "durationSec"> {
  return {
    url: `${scheme}://${address}${path}`,
    body,
    headers: { "content-type": "application/grpc", te: "trailers", "x-service-key": serviceKey },
    ...GRPC_LOAD,
    expectedBodyBytes,
    workDir: ctx.workDir,
  };
}

const h2Detail = (r: H2loadResult) => `${r.succeeded} calls, p50 ${r.latency.p50.toFixed(2)} ms, p99 ${r.latency.p99.toFixed(2)} ms`;
const VERIFY_PATH = `/${TokenService.typeName}/${TokenService.method.verifyToken.name}`;

interface Load {
  readonly pid: number;
  readonly options: Omit<H2loadOptions, "durationSec">;
}

/** Warms each load up, then measures them in interleaved rounds (measure.ts). */
async function h2loadBest(ctx: BenchContext, loads: readonly Load[]): Promise<Array<Best<H2loadResult>>> {
  for (const { options } of loads) await h2load({ ...options, durationSec: ctx.durations.warmup });
  return bestOfRounds(
    ctx.durations.rounds,
    loads.map(({ pid, options }) => async () => {
      const { result, cores, otherCores } = await measuredOn(pid, () => h2load({ ...options, durationSec: ctx.durations.measure }));
      return { result, cores, otherCores, rate: result.requestsPerSec, problems: result.problems };
    }),
  );
}

function h2Measurement(ctx: BenchContext, how: string, m: Best<H2loadResult>, fields: Pick<Measurement, "key" | "label" | "baseline" | "target">): Measurement {
  const detail = [`${how}, ${ctx.durations.measure} s`, roundsDetail(m, "req/s"), h2Detail(m.best.result), otherDetail(m.best.otherCores)].filter(Boolean).join("; ");
  return { ...fields, value: m.best.rate, unit: "req/s", detail, serverCores: m.best.cores, problems: m.problems };
}

export async function transport(ctx: BenchContext): Promise<void> {
  const target = await verifyTarget(ctx);
  const how = `h2load -c${GRPC_LOAD.clients} -m${GRPC_LOAD.streams}`;
  const [echo, valid, named, invalid] = await h2loadBest(ctx, [
    { pid: ctx.echoPid, options: grpcLoad(ctx, ctx.echoGrpc, ECHO_PATH, target.body, target.validBytes) },
    { pid: ctx.servicePid, options: grpcLoad(ctx, ctx.serviceGrpc, VERIFY_PATH, target.body, target.validBytes) },
    { pid: ctx.servicePid, options: grpcLoad(ctx, ctx.serviceGrpc, VERIFY_PATH, target.body, target.validBytes, "http", ctx.namedKey) },
    { pid: ctx.servicePid, options: grpcLoad(ctx, ctx.serviceGrpc, VERIFY_PATH, target.invalidBody, target.invalidBytes) },
  ]);
  const echoBaseline = { label: "bare grpc-js echo", value: echo!.best.rate };
  ctx.verifyPeak = valid!.best.rate;
  if (invalid!.problems.length === 0) ctx.verifyInvalidPeak = invalid!.best.rate;
  ctx.record(h2Measurement(ctx, how, echo!, { key: "echo", label: "bare grpc-js unary echo" }));
  ctx.record(h2Measurement(ctx, how, valid!, { key: "verifyValid", label: "VerifyToken, valid token", baseline: echoBaseline, target: { minRatio: 0.8 } }));
  ctx.record(
    h2Measurement(ctx, `${how}, x-service-key of a service account (PostgreSQL, made with the CLI)`, named!, {
      key: "verifyValidNamedKey",
      label: "VerifyToken, valid token, service-account key",
      baseline: { label: "the same with the SERVICE_KEYS bootstrap key", value: valid!.best.rate },
      target: { minRatio: 0.95 },
    }),
  );
  ctx.record(h2Measurement(ctx, how, invalid!, { key: "verifyInvalid", label: "VerifyToken, bad signature", baseline: echoBaseline }));

  // The same over TLS (TLS_CERT_FILE/TLS_KEY_FILE): another instance of the service and the echo
  // with one self-signed P-256 certificate; h2load negotiates h2 by ALPN, each client one handshake.
  const tls = await ctx.startTls();
  const [tlsEcho, tlsValid] = await h2loadBest(ctx, [
    { pid: tls.echoPid, options: grpcLoad(ctx, tls.echoGrpc, ECHO_PATH, target.body, target.validBytes, "https") },
    { pid: tls.servicePid, options: grpcLoad(ctx, tls.serviceGrpc, VERIFY_PATH, target.body, target.validBytes, "https") },
  ]);
  const tlsHow = `${how} over TLS 1.3 (ECDSA P-256)`;
  ctx.record(h2Measurement(ctx, tlsHow, tlsEcho!, { key: "echoTls", label: "bare grpc-js unary echo over TLS" }));
  ctx.record(
    h2Measurement(ctx, `${tlsHow}; plaintext VerifyToken ${Math.round(valid!.best.rate)} req/s`, tlsValid!, {
      key: "verifyValidTls",
      label: "VerifyToken over TLS, valid token",
      baseline: { label: "bare grpc-js echo over TLS", value: tlsEcho!.best.rate },
    }),
  );
}

export async function gateway(ctx: BenchContext): Promise<void> {
  const target = await verifyTarget(ctx);
  // VerifyToken is not served by the gateway; RevokeToken of the same bad-signature JWT has the
  // same request size and the same work (a failed signature check), and answers {}.
  const connectClient = createClient(TokenService, createConnectTransport({ baseUrl: ctx.serviceHttp, httpVersion: "1.1" }));
  await connectClient.revokeToken({ token: target.badToken });
  const connectLoad: Load = {
    pid: ctx.servicePid,
    options: {
      url: `${ctx.serviceHttp}/${TokenService.typeName}/${TokenService.method.revokeToken.name}`,
      body: Buffer.from(toBinary(RevokeTokenRequestSchema, create(RevokeTokenRequestSchema, { token: target.badToken }))),
      headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
      clients: GATEWAY_CLIENTS,
      streams: 1,
      http1: true,
      workDir: ctx.workDir,
    },
  };
  const grpcLoadOfSameJwt: Load = { pid: ctx.servicePid, options: grpcLoad(ctx, ctx.serviceGrpc, VERIFY_PATH, target.invalidBody, target.invalidBytes) };
  // The transport group measured the baseline already, unless it did not run.
  const [web, grpc] = await h2loadBest(ctx, ctx.verifyInvalidPeak === undefined ? [connectLoad, grpcLoadOfSameJwt] : [connectLoad]);
  const baseline = grpc?.best.rate ?? ctx.verifyInvalidPeak!;
  const how = `Connect protocol (application/proto) over HTTP/1.1, h2load --h1 -c${GATEWAY_CLIENTS}`;
  const m = h2Measurement(ctx, how, web!, { key: "gatewayRevokeBadJwt", label: "Connect gateway: RevokeToken, bad-signature JWT", baseline: { label: "grpc-js VerifyToken, same JWT", value: baseline } });
  ctx.record({ ...m, problems: [...web!.problems, ...(grpc?.problems ?? []).map((p) => `baseline: ${p}`)] });
}

export async function latency(ctx: BenchContext): Promise<void> {
  const target = await verifyTarget(ctx);
  const load = grpcLoad(ctx, ctx.serviceGrpc, VERIFY_PATH, target.body, target.validBytes);
  if (ctx.verifyPeak === undefined) {
    await h2load({ ...load, durationSec: ctx.durations.warmup });
    ctx.verifyPeak = (await h2load({ ...load, durationSec: ctx.durations.measure })).requestsPerSec;
  }
  const seconds = ctx.durations.latency;
  const { warmup } = ctx.durations;
  // Each paced run warms its own connections up first; the percentiles leave that out.
  const paced = (rate: number) => ({
    ...load,
    clients: LATENCY_CLIENTS,
    streams: 100,
    rpsPerClient: Math.max(1, Math.round(rate / LATENCY_CLIENTS)),
    durationSec: warmup + seconds,
    latencyAfterSec: warmup,
  });
  const half = Math.round(ctx.verifyPeak / 2);
  const how = (rate: number) => `h2load -c${LATENCY_CLIENTS} --rps ${Math.round(rate / LATENCY_CLIENTS)} each (${rate} req/s), ${seconds} s after ${warmup} s of warm-up`;

  const echo = await h2load({ ...paced(half), url: `http://${ctx.echoGrpc}${ECHO_PATH}` });
  const alone = await measuredOn(ctx.servicePid, () => h2load(paced(half)));
  const r = alone.result;
  ctx.record({
    key: "verifyP99Alone",
    label: `VerifyToken p99 alone at half peak (${half} req/s)`,
    value: r.latency.p99,
    unit: "ms",
    baseline: { label: "echo p99, same rate", value: echo.latency.p99 },
    target: { max: 5 },
    detail: `${how(half)}; p50 ${r.latency.p50.toFixed(2)} ms, max ${r.latency.max.toFixed(1)} ms; echo p50 ${echo.latency.p50.toFixed(2)} ms; ${otherDetail(alone.otherCores)}`,
    serverCores: alone.cores,
    problems: [...r.problems, ...echo.problems.map((p) => `echo: ${p}`)],
  });

  // Logins saturate the hashing threads; VerifyToken starts once the storm is under way.
  const channels = Array.from({ length: STORM_WORKERS }, () => connect(ctx.serviceGrpc));
  try {
    const rampMs = 1_500;
    const storm = closedLoop(STORM_WORKERS, rampMs + (warmup + seconds + 1) * 1000, loginOp(channels, ctx.emails));
    await new Promise((resolve) => setTimeout(resolve, rampMs));
    const during = await measuredOn(ctx.servicePid, () => h2load(paced(STORM_VERIFY_RATE)));
    const logins = await storm;
    const d = during.result;
    ctx.record({
      key: "verifyP99Storm",
      label: `VerifyToken p99 during a login storm (${STORM_VERIFY_RATE} req/s)`,
      value: d.latency.p99,
      unit: "ms",
      target: { max: 20 },
      detail: `${how(STORM_VERIFY_RATE)}; p50 ${d.latency.p50.toFixed(2)} ms, max ${d.latency.max.toFixed(1)} ms; storm: ${STORM_WORKERS} Login loops, ${logins.perSec.toFixed(1)} logins/s; ${otherDetail(during.otherCores)}`,
      serverCores: during.cores,
      problems: [...d.problems, ...loopProblems(logins)],
    });
  } finally {
    for (const c of channels) c.close();
  }
}

/**
 * Memory that stays flat: VerifyToken at full load (as the transport group) for the soak's
 * length, the service's resident set (its process tree: the service and its hashing process)
 * read every second; its reading at the end against its reading at soakFirstReading.
 */
export async function soak(ctx: BenchContext): Promise<void> {
  const target = await verifyTarget(ctx);
  const { soak: seconds, soakFirstReading: first } = ctx.durations;
  const readings: Array<{ at: number; mib: number }> = [];
  const started = performance.now();
  let heapFirst: Promise<string> | undefined;
  const timer = setInterval(() => {
    const at = (performance.now() - started) / 1000;
    readings.push({ at, mib: rssMiB(ctx.servicePid) });
    if (at >= first) heapFirst ??= heapFigures(ctx.serviceMetrics);
  }, 1_000);
  let run: Awaited<ReturnType<typeof measuredOn<H2loadResult>>>;
  try {
    run = await measuredOn(ctx.servicePid, () => h2load({ ...grpcLoad(ctx, ctx.serviceGrpc, VERIFY_PATH, target.body, target.validBytes), durationSec: seconds }));
  } finally {
    clearInterval(timer);
  }
  const end = rssMiB(ctx.servicePid);
  const heapEnd = await heapFigures(ctx.serviceMetrics);
  const atFirst = readings.find((r) => r.at >= first) ?? readings.at(-1) ?? { at: 0, mib: end };
  const every = (step: number) => readings.filter((r) => Math.round(r.at) % step === 0).map((r) => `${Math.round(r.at)} s ${r.mib.toFixed(0)}`).join(", ");
  const r = run.result;
  ctx.record({
    key: "soakRss",
    label: `service RSS after a ${seconds} s VerifyToken soak`,
    value: end,
    unit: "MiB",
    baseline: { label: `its RSS at ${first} s`, value: atFirst.mib },
    target: { maxRatio: 1.1 },
    detail: `h2load -c${GRPC_LOAD.clients} -m${GRPC_LOAD.streams} for ${seconds} s, ${Math.round(r.requestsPerSec)} req/s, ${r.succeeded} calls; RSS (service and hashing process), MiB: ${every(seconds >= 60 ? 15 : 5)}; the service's V8 heap at ${first} s: ${await heapFirst}; at the end: ${heapEnd}; ${otherDetail(run.otherCores)}`,
    serverCores: run.cores,
    problems: r.problems,
  });
}

/** The service's V8 heap as its /metrics says (prom-client's default metrics), MiB. */
async function heapFigures(metricsUrl: string): Promise<string> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const value = (pattern: RegExp) => {
      const match = pattern.exec(text);
      return match ? (Number(match[1]) / 2 ** 20).toFixed(0) : "?";
    };
    return [
      `used ${value(/^nodejs_heap_size_used_bytes (\S+)/m)}`,
      `total ${value(/^nodejs_heap_size_total_bytes (\S+)/m)}`,
      `old space ${value(/^nodejs_heap_space_size_used_bytes\{space="old"\} (\S+)/m)}/${value(/^nodejs_heap_space_size_total_bytes\{space="old"\} (\S+)/m)}`,
      `new space ${value(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m)}`,
      `external ${value(/^nodejs_external_memory_bytes (\S+)/m)}`,
    ].join(", ");
  } catch (err) {
    return `unavailable (${err instanceof Error ? err.message : String(err)})`;
  }
}
