// Prometheus metrics (prom-client), served at GET /metrics by their own listener
// (server/metrics-server.ts), never by the public gateway. One registry per service instance,
// so tests can run several in one process.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  readonly registry: Registry;
  /** `caller`: a service account or bootstrap name, "user", "loopback-dev" or "anonymous" (policy.ts). */
  readonly rpcs: Counter<"service" | "method" | "code" | "transport" | "caller">;
  readonly rpcSeconds: Histogram<"service" | "method" | "code" | "transport" | "caller">;
  readonly logins: Counter<"outcome">;
  readonly verifications: Counter<"result">;
  readonly refreshTokenReuse: Counter;
  readonly otpSends: Counter<"channel" | "result">;
  readonly rateLimited: Counter<"limit">;
  readonly otpBudgetExhausted: Counter<"scope" | "calling_code">;
  /** argon2 work: hashes and verifications run, and calls shed because hashing was full. */
  readonly passwordHashing: Counter<"result">;
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export function createMetrics(poolStats?: () => PoolStats): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labels = ["service", "method", "code", "transport", "caller"] as const;
  if (poolStats) {
    new Gauge({
      name: "identity_db_pool_connections",
      help: "PostgreSQL pool connections by state",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        const stats = poolStats();
        this.set({ state: "total" }, stats.total);
        this.set({ state: "idle" }, stats.idle);
        this.set({ state: "waiting" }, stats.waiting);
      },
    });
  }
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
    logins: new Counter({ name: "identity_logins_total", help: "Sign-in attempts by outcome", labelNames: ["outcome"], registers: [registry] }),
    verifications: new Counter({ name: "identity_verify_token_total", help: "VerifyToken answers by result", labelNames: ["result"], registers: [registry] }),
    refreshTokenReuse: new Counter({ name: "identity_refresh_token_reuse_total", help: "Spent refresh tokens presented again", registers: [registry] }),
    otpSends: new Counter({ name: "identity_otp_sends_total", help: "One-time codes sent", labelNames: ["channel", "result"], registers: [registry] }),
    rateLimited: new Counter({ name: "identity_rate_limited_total", help: "Calls refused by a rate limit", labelNames: ["limit"], registers: [registry] }),
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
