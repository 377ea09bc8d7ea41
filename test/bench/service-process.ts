// The processes under load run apart from the load generators: the identity service (the
// built dist/src/main.js, as `npm start` runs it) and the bare echo server, each a node process
// of its own, so that neither shares an event loop with the bench.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { onCleanup } from "./cleanup.js";
import { freePort } from "../support/ports.js";
export { freePort };

export interface NodeProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Lines the process wrote, stdout and stderr, for error messages. */
  readonly output: string[];
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}


/** Starts `node <args>` and resolves once `ready` accepts a line of its output or `probe` succeeds. */
export async function spawnNode(options: {
  name: string;
  args: readonly string[];
  env: Record<string, string>;
  ready: (line: string) => boolean;
  probe?: () => Promise<boolean>;
  timeoutMs?: number;
}): Promise<NodeProcess> {
  const child = spawn(process.execPath, options.args, {
    // MALLOC_ARENA_MAX as `npm start` and the Dockerfile set it.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", MALLOC_ARENA_MAX: "2", ...threadpoolEnv(), ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
  };
  onCleanup(`stop ${options.name}`, () => stop());

  let isReady = false;
  const lines = (stream: NodeJS.ReadableStream) =>
    createInterface({ input: stream }).on("line", (line) => {
      if (output.length < 2_000) output.push(line);
      if (!isReady && options.ready(line)) isReady = true;
    });
  lines(child.stdout!);
  lines(child.stderr!);

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!isReady) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${options.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output.join("\n")}`);
    }
    if (Date.now() > deadline) throw new Error(`${options.name} was not ready in time:\n${output.join("\n")}`);
    if (options.probe && (await options.probe().catch(() => false))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: options.name, child, output, stop };
}

/** The service and the bench hash on equally many libuv threads. */
function threadpoolEnv(): Record<string, string> {
  const size = process.env.UV_THREADPOOL_SIZE;
  return size ? { UV_THREADPOOL_SIZE: size } : {};
}
