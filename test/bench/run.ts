// `npm run bench`: the performance targets of issue 5 in one run. Starts embedded PostgreSQL,
// the identity service and a bare grpc-js echo server (environment.ts), measures them
// (scenarios.ts, flows.ts), prints the table, writes bench-results/latest.json and .md, and
// stops everything it started. Exits 0 when targets are missed (printed as MISSED); 1 when the
// run itself cannot be made.
//
//   npm run bench                        the full run (about 2 minutes)
//   npm run bench -- --quick             one short round each, for working on the bench itself
//   npm run bench -- --only=transport    some groups: transport, gateway, login, refresh, latency
//   npm run bench -- --profile           also CPU profiles of the service and the echo, summarized
//   npm run bench -- --update-doc        also replace the figures in BENCHMARKS.md
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { installGuards, runCleanups, wasAborted } from "./cleanup.js";
import { startEnvironment } from "./environment.js";
import * as flows from "./flows.js";
import { h2loadVersion } from "./h2load.js";
import { loadAverage, machineInfo, machineLine, serviceLogging } from "./machine.js";
import { foreignCpuMeter, peakRssMiB, rssStep } from "./procfs.js";
import { summarize } from "./profile-summary.js";
import { consoleTable, markdownTable, updateDoc, verdict, writeJson, type Measurement } from "./report.js";
import * as scenarios from "./scenarios.js";
import { clientVerification } from "./client-verify.js";

const RESULTS_DIR = path.resolve("bench-results");
const RUN_LIMIT_MS = 9 * 60_000;
/** Issue 14: the service's peak at most 1.5x the bare echo's under the same load. */
const RSS_TARGET_RATIO = 1.5;


const GROUP_RUNNERS: Record<scenarios.Group, (ctx: scenarios.BenchContext) => Promise<void>> = {
  transport: scenarios.transport,
  gateway: scenarios.gateway,
  login: flows.loginThroughput,
  refresh: flows.refreshThroughput,
  latency: scenarios.latency,
  client: clientVerification,
  soak: scenarios.soak,
};

function parseArgs(argv: readonly string[]) {
  const flag = (name: string) => argv.includes(`--${name}`);
  const only = argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
  for (const group of only ?? []) {
    if (!(scenarios.GROUPS as readonly string[]).includes(group)) throw new Error(`unknown group "${group}"; groups: ${scenarios.GROUPS.join(", ")}`);
  }
  return {
    groups: (only ?? scenarios.GROUPS) as readonly scenarios.Group[],
    profileDir: flag("profile") ? path.join(RESULTS_DIR, "profile") : undefined,
    updateDoc: flag("update-doc"),
    durations: flag("quick")
      ? { measure: 2, rounds: 1, warmup: 1, latency: 2, soak: 20, soakFirstReading: 5 }
      : { measure: 3, rounds: 3, warmup: 2, latency: 8, soak: 120, soakFirstReading: 30 },
  };
}

/** Adds the server's CPU time per call to a throughput figure, and prints it as it comes. */
function recorder(measurements: Measurement[]) {
  return (measured: Measurement) => {
    if (wasAborted()) return;
    const perCall = measured.serverCores !== undefined && measured.unit.endsWith("/s") && measured.value > 0;
    const m = perCall ? { ...measured, cpuPerCallUs: (measured.serverCores! / measured.value) * 1e6 } : measured;
    measurements.push(m);
    const v = verdict(m);
    console.log(`  ${m.label}: ${m.value.toFixed(m.unit === "ms" ? 2 : 0)} ${m.unit}${v.ratio !== undefined ? ` (${v.ratio.toFixed(2)}x ${m.baseline!.label})` : ""} ${v.result}`);
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const h2load = h2loadVersion();
  if (!h2load) {
    console.error("bench: h2load is not installed. It is the gRPC load generator (Debian/Ubuntu package nghttp2-client):\n  sudo apt-get update && sudo apt-get install -y nghttp2-client");
    process.exitCode = 1;
    return;
  }
  installGuards(RUN_LIMIT_MS);
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const foreignCores = foreignCpuMeter();
  console.log(`bench: ${h2load}, Node ${process.version}, load average ${loadAtStart}`);
  if (args.profileDir) rmSync(args.profileDir, { recursive: true, force: true });

  const env = await startEnvironment(args.profileDir);
  const logging = serviceLogging(env.serviceEnv, env.config);
  console.log(`bench: the service runs as a fresh npm start does (NODE_ENV=production): ${logging}`);
  const servicePid = env.service.child.pid!;
  const measurements: Measurement[] = [];
  const ctx: scenarios.BenchContext = {
    config: env.config,
    databaseUrl: env.databaseUrl,
    serviceGrpc: env.serviceGrpc,
    serviceHttp: env.serviceHttp,
    serviceMetrics: env.serviceMetrics,
    servicePid,
    echoGrpc: env.echoGrpc,
    echoPid: env.echo.child.pid!,
    clients: env.clients,
    emails: env.emails,
    workDir: env.workDir,
    durations: args.durations,
    record: recorder(measurements),
    startTls: env.startTls,
    namedKey: env.namedKey,
  };
  for (const group of args.groups) {
    if (wasAborted()) return;
    console.log(`bench: ${group} (load average ${loadAverage()})`);
    try {
      await GROUP_RUNNERS[group](ctx);
    } catch (err) {
      // One failed group does not cost the others their figures.
      console.error(`bench: ${group} failed:`, err);
      const message = err instanceof Error ? err.message.split("\n")[0]! : String(err);
      measurements.push({ key: `${group}Failed`, label: `${group} group`, value: NaN, unit: "", detail: "", problems: [`failed: ${message}`] });
    }
    env.rssSteps.push(`${rssStep(servicePid)} after ${group}`);
  }
  measurements.push({
    key: "peakRss",
    label: "service peak RSS (VmHWM) over the run",
    value: peakRssMiB(servicePid),
    unit: "MiB",
    baseline: { label: "the echo server's peak", value: peakRssMiB(env.echo.child.pid!) },
    target: { maxRatio: RSS_TARGET_RATIO },
    detail: `the service and its hashing process, each its own peak; peak so far, MiB (service + hashing process): ${env.rssSteps.join(", ")}`,
  });
  const otherCores = foreignCores(); // while the service, echo and PostgreSQL still count as the bench's
  await env.service.stop();
  await env.echo.stop();
  if (wasAborted()) return;

  const info = machineInfo(h2load);
  const seconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
  const loadAtEnd = loadAverage();
  const machine = machineLine({ startedAt, seconds, info, logging, loadAtStart, loadAtEnd, otherCores });
  console.log(`\n${consoleTable(measurements)}\n\n${machine}`);
  const markdown = markdownTable(measurements, machine);
  const { DATABASE_URL: _url, KEY_ENCRYPTION_KEY: _kek, SERVICE_KEYS: _keys, ...serviceSettings } = env.serviceEnv;
  writeJson(path.join(RESULTS_DIR, "latest.json"), {
    startedAt,
    seconds,
    machine: { ...info, loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd, otherProcessesCores: otherCores },
    settings: { groups: args.groups, durations: args.durations, serviceEnv: serviceSettings, argon2: env.config.argon2, hashing: env.config.hashing },
    measurements: measurements.map((m) => ({ ...m, ...verdict(m) })),
  });
  writeFileSync(path.join(RESULTS_DIR, "latest.md"), `${markdown}\n`);
  console.log(`\nbench: wrote ${path.relative(".", RESULTS_DIR)}/latest.json and latest.md`);
  if (args.updateDoc) {
    updateDoc("BENCHMARKS.md", markdown);
    console.log("bench: updated the figures in BENCHMARKS.md");
  }
  for (const name of args.profileDir ? ["service", "echo"] : []) {
    const dir = path.join(args.profileDir!, name);
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
      console.log(`\nCPU profile of the ${name} (${path.relative(".", path.join(dir, file))}):\n${summarize(path.join(dir, file))}`);
    }
  }
}

main()
  .catch((err: unknown) => {
    console.error("bench failed:", err);
    process.exitCode = 1;
  })
  .finally(() => runCleanups().then(() => process.exit()));
