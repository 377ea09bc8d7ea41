// Login and RefreshToken against their baselines, driven by Node loops (loops.ts): each figure
// and its baseline in interleaved rounds (measure.ts).
import { connect, login } from "./clients.js";
import { argon2Options, bareRefreshOp, closedLoop, loginOp, loopProblems, rawArgon2Op, refreshChainOp, type LoopResult } from "./loops.js";
import { bestOfRounds, measuredOn, otherDetail, roundsDetail, type Best, type Sample } from "./measure.js";
import type { Measurement } from "./report.js";
import type { BenchContext } from "./scenarios.js";

const LOGIN_WORKERS = 8;
const REFRESH_WORKERS = 16;
/** The service's pool size (openDatabase's default, which main.ts uses). */
const SERVICE_POOL_SIZE = 10;

type Op = (worker: number) => Promise<void>;

/** One round of `op`: on the service (`pid`, its CPU measured) or in the bench itself. */
function round(ctx: BenchContext, workers: number, op: Op, pid?: number) {
  return async (): Promise<Sample<LoopResult>> => {
    const { result, cores, otherCores } = await measuredOn(pid, () => closedLoop(workers, ctx.durations.measure * 1000, op));
    return { result, rate: result.perSec, cores, otherCores, problems: loopProblems(result) };
  };
}

function loopMeasurement(ctx: BenchContext, how: string, m: Best<LoopResult>, onService: boolean, fields: Pick<Measurement, "key" | "label" | "baseline" | "target">): Measurement {
  const r = m.best.result;
  const latency = `${r.ok} calls, p50 ${r.latency.p50.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms`;
  const detail = [`${how}, ${ctx.durations.measure} s`, roundsDetail(m, "/s"), latency, otherDetail(m.best.otherCores)].filter(Boolean).join("; ");
  return { ...fields, value: m.best.rate, unit: "/s", detail, serverCores: onService ? m.best.cores : undefined, problems: m.problems };
}

export async function loginThroughput(ctx: BenchContext): Promise<void> {
  const warmupMs = ctx.durations.warmup * 1000;
  const options = argon2Options(ctx.config);
  const raw = await rawArgon2Op(ctx.config);
  const channels = Array.from({ length: LOGIN_WORKERS }, () => connect(ctx.serviceGrpc));
  try {
    const logins = loginOp(channels, ctx.emails);
    await closedLoop(LOGIN_WORKERS, warmupMs, raw);
    await closedLoop(LOGIN_WORKERS, warmupMs, logins);
    const [argon, service] = await bestOfRounds(ctx.durations.rounds, [round(ctx, LOGIN_WORKERS, raw), round(ctx, LOGIN_WORKERS, logins, ctx.servicePid)]);
    const params = `argon2id m=${options.memoryCost} KiB t=${options.timeCost} p=${options.parallelism}`;
    const pool = `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}; the service hashes at most ${ctx.config.hashing.maxConcurrent} at once`;
    ctx.record(loopMeasurement(ctx, `${params}, ${LOGIN_WORKERS} in flight, ${pool}`, argon!, false, { key: "argon2Raw", label: "raw argon2 verify (bench process)" }));
    ctx.record(
      loopMeasurement(ctx, `${LOGIN_WORKERS} grpc-js clients in a closed loop, one account each`, service!, true, {
        key: "login",
        label: "Login (grpc-js)",
        baseline: { label: "raw argon2", value: argon!.best.rate },
        target: { minRatio: 0.85 },
      }),
    );
  } finally {
    for (const c of channels) c.close();
  }
}

export async function refreshThroughput(ctx: BenchContext): Promise<void> {
  const warmupMs = ctx.durations.warmup * 1000;
  const sessions = await Promise.all(Array.from({ length: REFRESH_WORKERS }, (_, i) => login(ctx.clients, ctx.emails[i % ctx.emails.length]!)));
  const bare = await bareRefreshOp(ctx.databaseUrl, sessions, SERVICE_POOL_SIZE);
  const channels = Array.from({ length: 4 }, () => connect(ctx.serviceGrpc));
  try {
    const refreshes = refreshChainOp(channels, sessions);
    await closedLoop(REFRESH_WORKERS, warmupMs, bare.op);
    await closedLoop(REFRESH_WORKERS, warmupMs, refreshes);
    const [sql, service] = await bestOfRounds(ctx.durations.rounds, [round(ctx, REFRESH_WORKERS, bare.op), round(ctx, REFRESH_WORKERS, refreshes, ctx.servicePid)]);
    ctx.record(
      loopMeasurement(ctx, `BEGIN; UPDATE..RETURNING; SELECT join; UPDATE; INSERT; COMMIT; ${REFRESH_WORKERS} chains, pool ${SERVICE_POOL_SIZE}`, sql!, false, {
        key: "refreshBarePg",
        label: "bare pg refresh transaction (bench process)",
      }),
    );
    ctx.record(
      loopMeasurement(ctx, `${REFRESH_WORKERS} chains, each refreshing with the token it got`, service!, true, {
        key: "refresh",
        label: "RefreshToken (grpc-js)",
        baseline: { label: "bare pg", value: sql!.best.rate },
        target: { minRatio: 0.5 },
      }),
    );
  } finally {
    for (const c of channels) c.close();
    await bare.close();
  }
}
