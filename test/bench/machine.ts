// What the figures of a run depend on besides the code: the machine, the load on it, the
// commit, and the settings the service ran with.
import { execFileSync } from "node:child_process";
import os from "node:os";

export const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(" ");

export interface MachineInfo {
  readonly cores: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly h2load: string;
  readonly uvThreadpoolSize: number;
  readonly commit: string;
}

export function machineInfo(h2load: string): MachineInfo {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
    if (execFileSync("git", ["status", "--porcelain", "--", "src"], { encoding: "utf8" }).trim()) commit += " + uncommitted changes in src/";
  } catch {
    // Not a git checkout.
  }
  return {
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    h2load,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    commit,
  };
}

/** BENCH_SERVICE_ENV="HASH_CONCURRENCY=1 LOG_LEVEL=warn": settings to try on the service. */
export function extraServiceEnv(): Record<string, string> {
  const pairs = (process.env.BENCH_SERVICE_ENV ?? "").split(/\s+/).filter(Boolean);
  return Object.fromEntries(
    pairs.map((pair) => {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new Error(`BENCH_SERVICE_ENV: "${pair}" is not NAME=value`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
}

/**
 * How the service logs in this run, for the header lines: "LOG_LEVEL=info (the default, as a
 * fresh npm start)" unless BENCH_SERVICE_ENV set a level or a sample rate.
 */
export function serviceLogging(serviceEnv: Readonly<Record<string, string>>, config: { readonly logLevel: string; readonly accessLogSampleRate: number }): string {
  const level = `LOG_LEVEL=${config.logLevel}${serviceEnv.LOG_LEVEL === undefined ? " (the default, as a fresh npm start)" : ""}`;
  return serviceEnv.ACCESS_LOG_SAMPLE_RATE === undefined ? level : `${level}, ACCESS_LOG_SAMPLE_RATE=${config.accessLogSampleRate}`;
}

export function machineLine(run: { startedAt: Date; seconds: number; info: MachineInfo; logging: string; loadAtStart: string; loadAtEnd: string; otherCores: number }): string {
  const { info } = run;
  const extra = process.env.BENCH_SERVICE_ENV ? `, BENCH_SERVICE_ENV="${process.env.BENCH_SERVICE_ENV}"` : "";
  return (
    `Run ${run.startedAt.toISOString()} in ${run.seconds} s: ${info.cores} cores (${info.cpu}), ${info.memoryGiB} GiB, Node ${info.node}, ${info.h2load}, ` +
    `UV_THREADPOOL_SIZE=${info.uvThreadpoolSize}, service ${run.logging}${extra}, commit ${info.commit}; ` +
    `load average (1/5/15 min) ${run.loadAtStart} at start, ${run.loadAtEnd} at end; other processes used ${run.otherCores.toFixed(2)} cores on average meanwhile.`
  );
}
