// The client's metrics, registered on the registry the caller passes (none by default: a library
// must not write into the process's global registry behind its owner's back).
import { Counter, Histogram, type Registry } from "prom-client";

export interface ClientMetrics {
  readonly propagation: Histogram;
  readonly local: Counter;
  readonly remote: Counter<"cause">;
}

export function createClientMetrics(registry: Registry | undefined): ClientMetrics {
  const registers = registry ? [registry] : [];
  return {
    propagation: new Histogram({
      name: "identity_client_revocation_propagation_seconds",
      help: "From a revocation on the identity service (its revoke time) to this client applying it",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    local: new Counter({
      name: "identity_client_local_verifications_total",
      help: "Tokens verified from memory (local mode), without a call",
      registers,
    }),
    remote: new Counter({
      name: "identity_client_remote_verifications_total",
      help: "VerifyToken calls made: cause=remote (remote mode) or fallback (local mode with a stale stream)",
      labelNames: ["cause"],
      registers,
    }),
  };
}
