// Prometheus metrics (prom-client), served at GET /metrics by their own listener
// (server/metrics-server.ts), never by the public gateway. One registry per service instance,
// so tests can run several in one process.
import { readFileSync } from "node:fs";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  readonly registry: Registry;
  /** `caller`: a service account or bootstrap name, "user", "loopback-dev" or "anonymous" (policy.ts). */
  readonly rpcs: Counter<"service" | "method" | "code" | "transport" | "caller">;
  readonly rpcSeconds: Histogram<"service" | "method" | "code" | "transport" | "caller">;
  /** `method`: Login, VerifyOtp or VerifyMfa; `outcome`: success, mfa_required or the failure (rpc-metrics.ts). */
  readonly logins: Counter<"method" | "outcome">;
  readonly verifications: Counter<"result">;
  readonly refreshTokenReuse: Counter;
  readonly otpSends: Counter<"channel" | "result">;
  /** `method`: the refusing RPC; `reason`: RATE_LIMITED or OVERLOADED (policy.ts). */
  readonly rateLimited: Counter<"method" | "reason">;
  readonly otpBudgetExhausted: Counter<"scope" | "calling_code">;
  /** argon2 work: hashes and verifications run, and calls shed because hashing was full. */
  readonly passwordHashing: Counter<"result">;
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

/**
 * What the gauges read when scraped; a gauge whose reading is absent is not registered. The
 * composition root (app.ts) passes closures over parts it builds after the registry (they count
 * into it); nothing is read before the first scrape.
 */
export interface GaugeReadings {
  readonly pool?: () => PoolStats;
  /** Whether the revocation LISTEN connection is up (revocation.ts). */
  readonly revocationListenerUp?: () => boolean;
  /** Password hashes waiting for a hashing slot (passwords.ts, the fair gate). */
  readonly hashingQueueDepth?: () => number;
  /** The current signing key's age in seconds (signing-keys.ts); undefined when none signs. */
  readonly signingKeyAgeSeconds?: () => number | undefined;
}

/** `identity_build_info{version,node}`: the package version (package.json) and the Node.js version. */
export interface BuildInfo {
  readonly version: string;
  readonly node: string;
}

/** This build's version (package.json, found from src/ and from dist/src/ alike) and Node.js's. */
export function buildInfo(): BuildInfo {
  let version = "unknown";
  for (const candidate of ["../package.json", "../../package.json"]) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(candidate, import.meta.url), "utf8")) as { name?: unknown; version?: unknown };
      if (typeof parsed.version === "string" && parsed.name !== undefined) {
        version = parsed.version;
        break;
      }
    } catch {
      // not this one
    }
  }
  return { version, node: process.version };
}

export function createMetrics(readings: GaugeReadings = {}, build?: BuildInfo): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labels = ["service", "method", "code", "transport", "caller"] as const;
  registerGauges(registry, readings, build);
  return {
    registry,
    rpcs: new Counter({ name: "identity_rpc_requests_total", help: "RPCs handled, by outcome", labelNames: labels, registers: [registry] }),
    rpcSeconds: new Histogram({
      name: "identity_rpc_duration_seconds",
      help: "RPC handling time",
      labelNames: labels,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    logins: new Counter({ name: "identity_logins_total", help: "Sign-in attempts by method and outcome", labelNames: ["method", "outcome"], registers: [registry] }),
    verifications: new Counter({ name: "identity_verify_token_total", help: "VerifyToken answers by result", labelNames: ["result"], registers: [registry] }),
    refreshTokenReuse: new Counter({ name: "identity_refresh_token_reuse_total", help: "Spent refresh tokens presented again", registers: [registry] }),
    otpSends: new Counter({ name: "identity_otp_sends_total", help: "One-time codes sent", labelNames: ["channel", "result"], registers: [registry] }),
    rateLimited: new Counter({ name: "identity_rate_limited_total", help: "Calls refused by a rate limit (RATE_LIMITED) or shed (OVERLOADED), by method and reason", labelNames: ["method", "reason"], registers: [registry] }),
    passwordHashing: new Counter({
      name: "identity_password_hashing_total",
      help: "argon2 work by result: hash and verify ran, shed was refused at once (OVERLOADED)",
      labelNames: ["result"],
      registers: [registry],
    }),
    otpBudgetExhausted: new Counter({
      name: "identity_otp_budget_exhausted_total",
      help: "Code sends refused by a service-wide SMS budget (scope sms_global or sms_country)",
      labelNames: ["scope", "calling_code"],
      registers: [registry],
    }),
  };
}

/**
 * Gauges read at scrape time, each its own metric: no series is the sum of others (a dashboard
 * summing a metric over its labels gets a meaningful number).
 */
function registerGauges(registry: Registry, readings: GaugeReadings, build: BuildInfo | undefined): void {
  if (build) {
    new Gauge({ name: "identity_build_info", help: "Always 1: the running version and Node.js version as labels", labelNames: ["version", "node"], registers: [registry] })
      .set({ version: build.version, node: build.node }, 1);
  }
  const gauge = (name: string, help: string, read: (() => number | undefined) | undefined): void => {
    if (read === undefined) return;
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read();
        if (value !== undefined) this.set(value);
      },
    });
  };
  const { pool, revocationListenerUp: up } = readings;
  if (pool) {
    gauge("identity_db_pool_connections", "PostgreSQL pool connections open (in use and idle)", () => pool().total);
    gauge("identity_db_pool_idle_connections", "PostgreSQL pool connections open and idle", () => pool().idle);
    gauge("identity_db_pool_waiting_requests", "Queries waiting for a PostgreSQL pool connection", () => pool().waiting);
  }
  gauge("identity_revocation_listener_up", "1 while the revocation LISTEN connection is up, 0 while the instance polls", up && (() => (up() ? 1 : 0)));
  gauge("identity_password_hashing_queue_depth", "Password hashes waiting for a hashing slot", readings.hashingQueueDepth);
  gauge("identity_signing_key_age_seconds", "Seconds since the current signing key began signing", readings.signingKeyAgeSeconds);
}

/**
 * What an operator watches during a database stall (issue 19): whether the breaker refuses calls
 * that need the database, and how old the revocation state VerifyToken answers from is.
 */
export function registerStallMetrics(registry: Registry, sources: { breakerOpen(): boolean; revocationAgeMs(): number }): void {
  new Gauge({
    name: "identity_db_breaker_open",
    help: "1 while the last readiness probe of PostgreSQL failed and calls that need it are refused at once (DATABASE_UNAVAILABLE)",
    registers: [registry],
    collect() {
      this.set(sources.breakerOpen() ? 1 : 0);
    },
  });
  new Gauge({
    name: "identity_revocation_staleness_seconds",
    help: "Age of the revocation state VerifyToken answers from; past REVOCATION_MAX_STALENESS_MS VerifyToken answers UNAVAILABLE",
    registers: [registry],
    collect() {
      this.set(sources.revocationAgeMs() / 1000);
    },
  });
}
