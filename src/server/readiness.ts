// Readiness, per service. A monitor asks PostgreSQL every second (does it answer within a
// second, is a migration pending; the probe's answer also opens and closes the store's breaker,
// src/store/health.ts, so a stall is noticed within 2 s) and derives each service's grpc.health.v1 status from the answer and from
// what the service declares once in routes.ts (SERVED_WITHOUT_DATABASE): a service that answers
// from memory stays SERVING while the database is away, the others are NOT_SERVING until it is
// back. /readyz reports the same derivation. Liveness (/healthz) never depends on the database.
//
// The overall status (service "") is SERVING while any service can answer, so NOT_SERVING only
// once nothing can (the server is shutting down, servers.ts). Every replica shares one database:
// ejecting a replica because the database is away helps no call that needs the database and
// drops the ones it could still answer (VerifyToken from memory). A client that needs a given
// service checks that service's name.
import type { HealthImplementation } from "grpc-health-check";
import type { Logger } from "../logger.js";

/** What the last probe found: the database answers with every migration applied, or not. */
export type DatabaseState = "ok" | "unreachable" | "migrations pending";

export type ServingStatus = "SERVING" | "NOT_SERVING";

/** One mounted service, as readiness sees it (built from the routes in servers.ts). */
export interface ServiceReadiness {
  /** The fully-qualified proto name grpc.health.v1 knows it by, e.g. identity.v1.TokenService. */
  readonly name: string;
  /** False for a service that answers from memory (routes.ts SERVED_WITHOUT_DATABASE). */
  readonly needsDatabase: boolean;
}

/** What /readyz answers and grpc.health.v1 mirrors. */
export interface ReadinessReport {
  readonly database: DatabaseState;
  /** The overall status (grpc.health.v1 service ""): SERVING while any service is. */
  readonly overall: ServingStatus;
  /** Every mounted service by its proto name. */
  readonly services: Readonly<Record<string, ServingStatus>>;
  /**
   * How old the revocation state VerifyToken answers from is, in ms (issue 19); past
   * REVOCATION_MAX_STALENESS_MS VerifyToken answers UNAVAILABLE. Set by /readyz only.
   */
  readonly revocationAgeMs?: number;
}

/**
 * The only derivation: a service serves when the database is ok or it does not need it, and
 * the overall status serves while any service does.
 */
export function readinessReport(database: DatabaseState, services: readonly ServiceReadiness[]): ReadinessReport {
  const statuses: Record<string, ServingStatus> = {};
  for (const { name, needsDatabase } of services) statuses[name] = database === "ok" || !needsDatabase ? "SERVING" : "NOT_SERVING";
  const overall = Object.values(statuses).includes("SERVING") ? "SERVING" : "NOT_SERVING";
  return { database, overall, services: statuses };
}

/** The report as grpc.health.v1 statuses: "" (the overall status), then every service. */
export function healthStatuses(report: ReadinessReport): Record<string, ServingStatus> {
  return { "": report.overall, ...report.services };
}

export interface Readiness {
  /** Probes the database now. */
  database(): Promise<DatabaseState>;
  /** How old the revocation state is, in ms (0 when nothing follows it). */
  revocationAgeMs(): number;
  /** Starts mirroring each service's derived status into the health service until stop(). */
  watch(health: HealthImplementation, services: readonly ServiceReadiness[], intervalMs?: number): void;
  stop(): void;
}

/** What readiness asks of the database (the store's DatabaseHealth provides it). */
export interface DatabaseProbe {
  /** Rejects unless PostgreSQL answers within `timeoutMs`; opens the store's breaker when it rejects, closes it when it resolves. */
  ping(timeoutMs: number): Promise<void>;
  pendingMigrations(): Promise<boolean>;
}

/**
 * How long a probe may wait for PostgreSQL, and how often the monitor probes: together they bound
 * how long a database that stopped answering goes unnoticed (2 s, issue 19).
 */
export const PROBE_TIMEOUT_MS = 1_000;
export const PROBE_INTERVAL_MS = 1_000;

export function createReadiness(db: DatabaseProbe, logger: Logger, revocationAgeMs: () => number = () => 0): Readiness {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let last: DatabaseState | undefined;

  async function database(): Promise<DatabaseState> {
    try {
      await withTimeout(db.ping(PROBE_TIMEOUT_MS), PROBE_TIMEOUT_MS + 500);
    } catch {
      return "unreachable";
    }
    try {
      return (await withTimeout(db.pendingMigrations(), 2_000)) ? "migrations pending" : "ok";
    } catch {
      return "unreachable";
    }
  }

  return {
    database,
    revocationAgeMs,
    watch(health, services, intervalMs = PROBE_INTERVAL_MS) {
      stopped = false;
      const tick = async () => {
        const state = await database();
        if (stopped) return;
        if (state !== last) {
          const report = readinessReport(state, services);
          if (last !== undefined) {
            const notServing = Object.keys(report.services).filter((name) => report.services[name] === "NOT_SERVING");
            logger.warn(
              { database: state, notServing, revocationAgeMs: revocationAgeMs() },
              state === "ok" ? "database ready again: every service serving" : "database not ready: services that need it not serving, calls needing it refused at once",
            );
          }
          last = state;
          for (const [name, status] of Object.entries(healthStatuses(report))) health.setStatus(name, status);
        }
        timer = setTimeout(() => void tick(), intervalMs);
        timer.unref();
      };
      void tick();
    },
    stop() {
      stopped = true;
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
