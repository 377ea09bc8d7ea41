// What /proc says about the processes the bench started: their descendants, peak resident
// memory and CPU time.
import { readdirSync, readFileSync } from "node:fs";

/** Every process started by `pid`, and by those, still alive. */
export function descendants(pid: number): number[] {
  return processTree(pid).slice(1);
}

/** The pid and every descendant of it. */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, "utf8").trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}

function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident set now (VmRSS) summed over the process tree, in MiB. */
export function rssMiB(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusKiB(p, "VmRSS"), 0) / 1024;
}

/** Peak resident set (VmHWM) of the process itself and of its descendants apart, in MiB. */
export function peakRssParts(pid: number): { own: number; descendants: number } {
  const [own, ...rest] = processTree(pid);
  return { own: statusKiB(own!, "VmHWM") / 1024, descendants: rest.reduce((sum, p) => sum + statusKiB(p, "VmHWM"), 0) / 1024 };
}

/** "total (own + descendants)" peaks so far, MiB: the service's own and its hashing process's. */
export function rssStep(pid: number): string {
  const { own, descendants } = peakRssParts(pid);
  return `${(own + descendants).toFixed(0)} (${own.toFixed(0)} + ${descendants.toFixed(0)})`;
}

/** Peak resident set (VmHWM, kept by the kernel) summed over the process tree, in MiB. */
export function peakRssMiB(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + statusKiB(p, "VmHWM"), 0) / 1024;
}

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) used so far by the process tree; with `reaped`, also by the
 * children its members have waited for (h2load runs, PostgreSQL backends).
 */
export function cpuSeconds(pid: number, reaped = false): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
      ticks += fields[11]! + fields[12]! + (reaped ? fields[13]! + fields[14]! : 0);
    } catch {
      // The process ended meanwhile.
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** CPU seconds the whole machine has been busy (all cores, idle and I/O wait excluded). */
export function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

/** Measures how much CPU processes other than this one and its descendants used: noise. */
export function foreignCpuMeter(): () => number {
  const t0 = performance.now();
  const machine0 = machineBusySeconds();
  const own0 = cpuSeconds(process.pid, true);
  return () => Math.max(0, (machineBusySeconds() - machine0 - (cpuSeconds(process.pid, true) - own0)) / ((performance.now() - t0) / 1000));
}
