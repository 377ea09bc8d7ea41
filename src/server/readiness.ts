// Readiness: the service is ready while PostgreSQL answers and no migration is pending. A
// monitor checks every few seconds and mirrors the answer into grpc.health.v1 (NOT_SERVING
// while not ready); /readyz asks it too. Liveness (/healthz) never depends on the database.
import type { HealthImplementation } from "grpc-health-check";
import type { Logger } from "../logger.js";

export interface Readiness {
  check(): Promise<boolean>;
  /** Starts mirroring readiness into the health service until stop(). */
  watch(health: HealthImplementation, services: readonly string[], intervalMs?: number): void;
  stop(): void;
}

/** What readiness asks of the database (the store's DatabaseHealth provides it). */
export interface DatabaseProbe {
  ping(): Promise<void>;
  pendingMigrations(): Promise<boolean>;
}

export function createReadiness(db: DatabaseProbe, logger: Logger): Readiness {
  let timer: NodeJS.Timeout | undefined;
  let last: boolean | undefined;

  async function check(): Promise<boolean> {
    try {
      await withTimeout(db.ping(), 2_000);
      return !(await withTimeout(db.pendingMigrations(), 2_000));
    } catch {
      return false;
    }
  }

  return {
    check,
    watch(health, services, intervalMs = 2_000) {
      const tick = async () => {
        const ready = await check();
        if (ready !== last) {
          if (last !== undefined) logger.warn({ ready }, ready ? "database reachable again: serving" : "database unreachable: not serving");
          last = ready;
          for (const name of ["", ...services]) health.setStatus(name, ready ? "SERVING" : "NOT_SERVING");
        }
        timer = setTimeout(() => void tick(), intervalMs);
        timer.unref();
      };
      void tick();
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
