// The hashing process: runs argon2 for the service on its own threads, at a lowered scheduling
// priority, so that a login storm takes only the CPU the service's event loop and PostgreSQL
// leave idle (argon2-process.ts starts it; the protocol is its `Request`/`Reply`).
//
// Started with HASH_NICE and UV_THREADPOOL_SIZE in its environment. On Linux the nice value is
// per thread, and a thread inherits its creator's: every thread that exists now is lowered, and
// the ones libuv or V8 start later inherit it from the main thread.
import { readdirSync } from "node:fs";
import { setPriority } from "node:os";
import argon2 from "argon2";
import type { Reply, Request } from "./argon2-process.js";

function lowerPriority(nice: number): void {
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    tids = ["0"]; // no procfs: the calling thread only
  }
  for (const tid of tids) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // A thread that ended meanwhile.
    }
  }
}

lowerPriority(Number(process.env.HASH_NICE ?? "0"));

const send = (reply: Reply): void => {
  process.send?.(reply);
};

process.on("message", (message: Request) => {
  const work = message.op === "hash"
    ? argon2.hash(message.password, { type: argon2.argon2id, ...message.options })
    : argon2.verify(message.hash, message.password);
  work.then(
    (value) => send({ id: message.id, ok: true, value }),
    // argon2's messages name the parameters or the malformed hash, never the password.
    (err: unknown) => send({ id: message.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

// The service is gone (exit, crash, kill): nothing is left to hash for.
process.on("disconnect", () => process.exit(0));
send({ id: 0, ok: true, value: "ready" });
