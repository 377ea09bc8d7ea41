// Argon2 in a process of its own, at a lowered scheduling priority (argon2-child.ts).
//
// Why a process: argon2 (the npm package) hashes on libuv's thread pool, which one process
// shares between all its threads, so hashing cannot be lowered in priority inside the service
// without lowering its file and DNS work too. In a child process every hashing thread runs at
// HASH_NICE: when VerifyToken, the rest of the service or PostgreSQL need a core, the kernel
// gives it to them first, and hashing gets the CPU they leave idle. The child also keeps
// argon2's 19 MiB blocks out of the service's heap, with glibc's default allocator (the
// service runs with MALLOC_ARENA_MAX=2, which costs argon2 about a quarter more CPU per hash).
//
// Passwords cross a local pipe between two processes of the same user, never a socket.
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Argon2Engine, Argon2Options } from "../domain/accounts/passwords.js";
import { AppError } from "../domain/errors.js";

export type Request =
  | { readonly id: number; readonly op: "hash"; readonly password: string; readonly options: Argon2Options }
  | { readonly id: number; readonly op: "verify"; readonly hash: string; readonly password: string };

export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: string | boolean }
  | { readonly id: number; readonly ok: false; readonly error: string };

export interface Argon2ProcessOptions {
  /** Threads hashing at once in the child (its UV_THREADPOOL_SIZE). */
  readonly threads: number;
  /** Nice value of every thread of the child, 0 (as the service) to 19 (lowest). */
  readonly nice: number;
  /** Told when the child ends unexpectedly (it is started again by the next hash). */
  readonly onExit?: (detail: { code: number | null; signal: NodeJS.Signals | null; pending: number }) => void;
}

export interface Argon2Process extends Argon2Engine {
  /** The child's pid, once started. */
  readonly pid: number | undefined;
  /** Starts the child now rather than on the first hash, and waits until it answers. */
  start(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

function childEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  // Built (dist/, .js) it runs as is; from source (tests, tsx) it needs tsx's loader.
  const execArgv = ext === ".ts" ? ["--import", "tsx"] : [];
  if (process.execArgv.includes("--enable-source-maps")) execArgv.push("--enable-source-maps");
  return { file: path.join(path.dirname(here), `argon2-child${ext}`), execArgv };
}

export function createArgon2Process(options: Argon2ProcessOptions): Argon2Process {
  let child: ChildProcess | undefined;
  let ready: Promise<ChildProcess> | undefined;
  let closing = false;
  let nextId = 1;
  const pending = new Map<number, { resolve: (value: string | boolean) => void; reject: (err: Error) => void }>();

  const unavailable = (why: string): AppError => new AppError("UNAVAILABLE", `password hashing process ${why}`, { retryAfterMs: 1_000 });

  // The pipe keeps the service's event loop alive only while a hash is pending, so a command
  // that hashes once still exits when it is done.
  function holdLoop(): void {
    if (pending.size > 0) child?.channel?.ref();
    else child?.channel?.unref();
  }

  function spawn(): Promise<ChildProcess> {
    const { file, execArgv } = childEntry();
    const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: String(options.threads), HASH_NICE: String(options.nice) };
    delete env.MALLOC_ARENA_MAX;
    const started = fork(file, [], { execArgv, env, stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "json" });
    child = started;
    started.unref();
    return new Promise<ChildProcess>((resolve, reject) => {
      const timer = setTimeout(() => {
        started.kill("SIGKILL");
        reject(unavailable(`did not start within ${READY_TIMEOUT_MS} ms`));
      }, READY_TIMEOUT_MS);
      started.on("message", (reply: Reply) => {
        if (reply.id === 0) {
          clearTimeout(timer);
          holdLoop();
          resolve(started);
          return;
        }
        const waiter = pending.get(reply.id);
        if (!waiter) return;
        pending.delete(reply.id);
        holdLoop();
        if (reply.ok) waiter.resolve(reply.value);
        else waiter.reject(new Error(reply.error));
      });
      started.on("error", (err) => {
        clearTimeout(timer);
        reject(unavailable(`failed: ${err.message}`));
      });
      started.on("exit", (code, signal) => {
        clearTimeout(timer);
        if (child === started) {
          child = undefined;
          ready = undefined;
        }
        const lost = [...pending.values()];
        pending.clear();
        if (!closing) options.onExit?.({ code, signal, pending: lost.length });
        for (const waiter of lost) waiter.reject(unavailable(`ended (${signal ?? `exit code ${code}`})`));
        reject(unavailable(`ended before it was ready (${signal ?? `exit code ${code}`})`));
      });
    });
  }

  function ensure(): Promise<ChildProcess> {
    if (closing) return Promise.reject(unavailable("is closed"));
    ready ??= spawn().catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
    return ready;
  }

  type Unsent = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never;

  async function call(request: Unsent): Promise<string | boolean> {
    const target = await ensure();
    const id = nextId++;
    return new Promise<string | boolean>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      holdLoop();
      target.send({ ...request, id } as Request, (err) => {
        if (!err || !pending.has(id)) return;
        pending.delete(id);
        holdLoop();
        reject(unavailable(`could not be reached: ${err.message}`));
      });
    });
  }

  return {
    get pid() {
      return child?.pid;
    },
    async start() {
      await ensure();
    },
    async hash(password, hashOptions) {
      return (await call({ op: "hash", password, options: hashOptions })) as string;
    },
    async verify(hash, password) {
      return (await call({ op: "verify", hash, password })) === true;
    },
    async close() {
      closing = true;
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
      running.disconnect(); // the child exits on disconnect
      const timer = setTimeout(() => running.kill("SIGKILL"), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
