// h2load (Debian package nghttp2-client) as the load generator for gRPC and Connect: a C
// client on its own core, so the figures are the server's and not a Node client's.
// gRPC answers HTTP 200 even for errors, so a run also checks that every response carried the
// expected body bytes; a trailers-only error carries none.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { percentiles, type Percentiles } from "./stats.js";

export function h2loadVersion(): string | undefined {
  try {
    return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

/** A gRPC length-prefixed message: flag 0, 4-byte big-endian length, the protobuf bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

export interface H2loadOptions {
  readonly url: string;
  readonly body: Buffer;
  readonly headers: Record<string, string>;
  readonly clients: number;
  readonly streams: number;
  readonly durationSec: number;
  /** Requests per second per client (open loop); omitted: as fast as the server answers. */
  readonly rpsPerClient?: number;
  readonly http1?: boolean;
  /** Body bytes every successful response carries (gRPC: 5 + message length). */
  readonly expectedBodyBytes?: number;
  /** Latency percentiles leave out requests started in the first seconds (fresh connections). */
  readonly latencyAfterSec?: number;
  readonly workDir: string;
}

export interface H2loadResult {
  readonly requestsPerSec: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly status2xx: number;
  readonly dataBytes: number;
  /** From the per-request log, in milliseconds. */
  readonly latency: Percentiles;
  /** Why the figures cannot be trusted (errors among the responses); empty when they can. */
  readonly problems: readonly string[];
}

let runCounter = 0;

export async function h2load(options: H2loadOptions): Promise<H2loadResult> {
  const id = ++runCounter;
  const bodyFile = `${options.workDir}/h2load-${id}.body`;
  const logFile = `${options.workDir}/h2load-${id}.log`;
  writeFileSync(bodyFile, options.body);
  const args = [
    "-c", String(options.clients),
    "-m", String(options.streams),
    "-D", String(options.durationSec),
    "-d", bodyFile,
    "--log-file", logFile,
    ...Object.entries(options.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    ...(options.rpsPerClient ? ["--rps", String(options.rpsPerClient)] : []),
    ...(options.http1 ? ["--h1"] : []),
    options.url,
  ];
  const output = await run(args, (options.durationSec + 20) * 1000);
  const result = parse(output, logFile, options.latencyAfterSec ?? 0);
  return { ...result, problems: check(result, options) };
}

function run(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`h2load ${args.join(" ")} exited with ${code}:\n${output}`));
    });
  });
}

function number(output: string, pattern: RegExp): number {
  const match = pattern.exec(output);
  if (!match) throw new Error(`unexpected h2load output (no ${pattern}):\n${output}`);
  return Number(match[1]);
}

function parse(output: string, logFile: string, latencyAfterSec: number): Omit<H2loadResult, "problems"> {
  // Columns: start (µs since epoch), HTTP status (-1 when the stream failed), duration (µs).
  const rows = readFileSync(logFile, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.split("\t").map(Number));
  const firstStart = rows.reduce((min, r) => Math.min(min, r[0]!), Infinity);
  const durationsMs = rows.filter((r) => r[0]! >= firstStart + latencyAfterSec * 1e6).map((r) => r[2]! / 1000);
  return {
    requestsPerSec: number(output, /finished in [\d.]+\w+, ([\d.]+) req\/s/),
    succeeded: number(output, /(\d+) succeeded/),
    failed: number(output, /(\d+) failed/) + number(output, /(\d+) errored/) + number(output, /(\d+) timeout/),
    status2xx: number(output, /status codes: (\d+) 2xx/),
    dataBytes: number(output, /\((\d+)\) data/),
    latency: percentiles(durationsMs),
  };
}

/**
 * What makes a rate untrustworthy: failures, non-2xx answers, gRPC errors. h2load counts the
 * status and body of answers still in flight at the end but not their requests, so bodies are
 * compared with 2xx answers; a gRPC error (trailers only) has no body. A shortfall within 0.1%
 * is a response cut off by the end of the run.
 */
function check(result: Omit<H2loadResult, "problems">, options: H2loadOptions): string[] {
  const problems: string[] = [];
  if (result.succeeded === 0) problems.push("no request succeeded");
  if (result.failed > 0) problems.push(`${result.failed} requests failed`);
  if (result.status2xx < result.succeeded) problems.push(`${result.status2xx} HTTP 2xx answers for ${result.succeeded} requests`);
  if (options.expectedBodyBytes) {
    const missing = result.status2xx - Math.floor(result.dataBytes / options.expectedBodyBytes);
    const extra = result.dataBytes % options.expectedBodyBytes !== 0 && missing <= 0;
    if (missing > result.status2xx * 0.001 || missing < 0 || extra) {
      problems.push(`${result.dataBytes} body bytes for ${result.status2xx} answers of ${options.expectedBodyBytes} bytes: about ${missing} gRPC errors or unexpected answers`);
    }
  }
  return problems;
}
