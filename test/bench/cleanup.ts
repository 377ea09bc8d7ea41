// Everything the bench starts registers how to stop it here; `runCleanups` runs them last
// first, on success, on error, on Ctrl-C and when the watchdog fires. As a last resort the
// exit handler kills every process this one started that is still alive, so none outlives
// the run.
import { descendants } from "./procfs.js";
type Cleanup = { readonly name: string; readonly run: () => Promise<void> | void };

const cleanups: Cleanup[] = [];
/** Synchronous last resort for process.on("exit"), e.g. removing files. */
const exitActions = new Set<() => void>();

export function onCleanup(name: string, run: () => Promise<void> | void): void {
  cleanups.push({ name, run });
}

export function onExitSync(action: () => void): () => void {
  exitActions.add(action);
  return () => exitActions.delete(action);
}

let running: Promise<void> | undefined;
let aborted = false;

/** Whether the run was interrupted; it then records nothing more. */
export function wasAborted(): boolean {
  return aborted;
}

export function runCleanups(): Promise<void> {
  running ??= (async () => {
    while (cleanups.length > 0) {
      const cleanup = cleanups.pop()!;
      try {
        await cleanup.run();
      } catch (err) {
        console.error(`cleanup "${cleanup.name}" failed:`, err);
      }
    }
  })();
  return running;
}

/** Stops everything on SIGINT/SIGTERM, on a crash, and after `limitMs` whatever the run is doing. */
export function installGuards(limitMs: number): void {
  const abort = (why: string, code: number) => {
    aborted = true;
    console.error(`\nbench: ${why}; stopping everything it started`);
    void runCleanups().finally(() => process.exit(code));
  };
  process.once("SIGINT", () => abort("interrupted", 130));
  process.once("SIGTERM", () => abort("terminated", 143));
  process.on("uncaughtException", (err) => {
    if (aborted) return; // connections breaking while everything stops
    console.error(err);
    abort("crashed", 1);
  });
  setTimeout(() => abort(`still running after ${Math.round(limitMs / 1000)} s`, 1), limitMs).unref();
  process.on("exit", () => {
    for (const pid of descendants(process.pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    for (const action of exitActions) {
      try {
        action();
      } catch {
        // Best effort: the process is exiting.
      }
    }
  });
}
