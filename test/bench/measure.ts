// How a throughput figure is taken on a shared machine: the figure and its baseline are
// measured in interleaved rounds, so both meet the same disturbances, and each keeps its best
// round, the least disturbed. The server's CPU time per call comes along.
import { cpuSeconds, foreignCpuMeter } from "./procfs.js";

export interface Sample<T> {
  readonly result: T;
  /** Calls per second. */
  readonly rate: number;
  /** CPU cores the server process used meanwhile (0 when the work runs in the bench itself). */
  readonly cores: number;
  /** CPU cores processes outside the bench used meanwhile: how disturbed the sample is. */
  readonly otherCores: number;
  readonly problems: readonly string[];
}

export interface Best<T> {
  readonly best: Sample<T>;
  /** Every round's rate, in order. */
  readonly rates: readonly number[];
  /** Problems of any round: one round made of errors invalidates the figure. */
  readonly problems: readonly string[];
}

/** Runs `work`, measuring the CPU cores `pid` (if any) and processes outside the bench used meanwhile. */
export async function measuredOn<T>(pid: number | undefined, work: () => Promise<T>): Promise<{ result: T; cores: number; otherCores: number }> {
  const other = foreignCpuMeter();
  const cpu0 = pid === undefined ? 0 : cpuSeconds(pid);
  const t0 = performance.now();
  const result = await work();
  const cores = pid === undefined ? 0 : (cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000);
  return { result, cores, otherCores: Math.max(0, other()) };
}

export const otherDetail = (otherCores: number): string => `other processes ${otherCores.toFixed(2)} cores`;

export async function bestOfRounds<T>(rounds: number, steps: ReadonlyArray<() => Promise<Sample<T>>>): Promise<Array<Best<T>>> {
  const samples: Array<Array<Sample<T>>> = steps.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, step] of steps.entries()) samples[i]!.push(await step());
  }
  return samples.map((all) => ({
    best: all.reduce((a, b) => (b.rate > a.rate ? b : a)),
    rates: all.map((s) => s.rate),
    problems: [...new Set(all.flatMap((s) => s.problems))],
  }));
}

export function roundsDetail(best: Best<unknown>, unit: string): string {
  if (best.rates.length === 1) return "";
  return `best of ${best.rates.length} rounds (${best.rates.map((r) => Math.round(r).toLocaleString("en-US")).join(", ")} ${unit})`;
}
