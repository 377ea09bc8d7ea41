// Argon2 runs in a process of its own at a lowered priority (src/hashing/argon2-process.ts), so
// that a login storm takes only the CPU the event loop and PostgreSQL leave idle. These tests
// find that process as the kernel sees it (a child of this test process), check the priority
// of every one of its threads, and kill it in the middle of a login.
import { readFileSync, readdirSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { PASSWORD } from "../support/accounts.js";
import { withService } from "../support/setup.js";

/** Pids of this process's children running the hashing process's entry. */
function hashingChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("argon2-child")) pids.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return pids;
}

/** The nice value of every thread of `pid` (field 19 of /proc/pid/task/tid/stat). */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the hashing process", () => {
  it("hashes for the service in a child whose every thread runs at HASH_NICE, and ends with the service", async () => {
    const before = new Set(hashingChildren());
    let pid = 0;
    await withService({ env: { HASH_NICE: "7", HASH_CONCURRENCY: "3" } }, async (t) => {
      const account = await t.signUp("nice");
      expect((await t.login(account.email)).accessToken).not.toBe("");
      const mine = hashingChildren().filter((p) => !before.has(p));
      expect(mine).toHaveLength(1);
      pid = mine[0]!;
      const nices = threadNices(pid);
      // The main thread, V8's and libuv's: at least the three hashing threads besides the main one.
      expect(nices.length).toBeGreaterThanOrEqual(4);
      expect(new Set(nices)).toEqual(new Set([7]));
      // The service itself is not lowered.
      expect(threadNices(process.pid)).not.toContain(7);
    });
    // Closing the service ends the process.
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
  });

  it("answers UNAVAILABLE to a login whose hash dies with the process, stores nothing, and hashes again in a new one", async () => {
    const before = new Set(hashingChildren());
    // Slow hashes (about half a second each), so that a login is surely in the middle of one.
    await withService({ env: { ARGON2_ITERATIONS: "40" } }, async (t) => {
      const account = await t.signUp("killed");
      const [pid] = hashingChildren().filter((p) => !before.has(p));
      expect(pid).toBeGreaterThan(0);
      const cpuOf = (p: number) => readFileSync(`/proc/${p}/stat`, "utf8").slice(readFileSync(`/proc/${p}/stat`, "utf8").lastIndexOf(")") + 2).split(" ").slice(11, 13).reduce((a, b) => a + Number(b), 0);
      const idle = cpuOf(pid!);
      const error = await t.expectUnchanged(async () => {
        const login = t.clients().auth.login({ identifier: account.email, password: PASSWORD }).then(
          () => undefined,
          (err: unknown) => ConnectError.from(err),
        );
        // Killed once it is hashing (its CPU time moves), not before the login reached it.
        for (let i = 0; i < 200 && cpuOf(pid!) === idle; i++) await new Promise((r) => setTimeout(r, 5));
        process.kill(pid!, "SIGKILL");
        return login;
      }, ["rate_limits"]);
      expect(error?.code).toBe(Code.Unavailable);
      expect(t.logLines.some((line) => line.includes("password hashing process ended") && line.includes("SIGKILL"))).toBe(true);
      expect(t.logLines.join("\n")).not.toContain(PASSWORD);
      // The next hash starts a new process, at the same priority.
      expect((await t.login(account.email)).accessToken).not.toBe("");
      const now = hashingChildren().filter((p) => !before.has(p));
      expect(now).toHaveLength(1);
      expect(now[0]).not.toBe(pid);
      expect(new Set(threadNices(now[0]!))).toEqual(new Set([10]));
    });
  });

  it("can be turned off: HASH_ISOLATION=inline hashes on the service's own thread pool", async () => {
    const before = new Set(hashingChildren());
    await withService({ env: { HASH_ISOLATION: "inline" } }, async (t) => {
      const account = await t.signUp("inline");
      expect((await t.login(account.email)).accessToken).not.toBe("");
      expect(hashingChildren().filter((p) => !before.has(p))).toEqual([]);
    });
  });
});
