// Builds both servers from their dependencies without listening; `listen` binds them and
// `close` drains them. main.ts and the tests (on port 0) are the only callers.
import type http from "node:http";
import { isIP, type AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import proxyaddr from "proxy-addr";
import { HealthImplementation } from "grpc-health-check";
import { createGrpcServer, type GrpcConnectionAge } from "./grpc-server.js";
import { createMetricsServer } from "./metrics-server.js";
import { createWebServer, type BrowserAppOptions, type WebServer } from "./web-server.js";
import { createRoutes, servedWithoutDatabase, type ServiceDeps } from "../services/routes.js";
import type { TlsFiles } from "./tls.js";
import type { ServerMetadata } from "./well-known.js";
import { createHttpAuth } from "./http-auth.js";
import { admitService, serviceCallerOf } from "../services/policy.js";
import type { SigningKeys } from "../domain/tokens/signing-keys.js";
import type { Registry } from "prom-client";
import { healthStatuses, readinessReport, type Readiness, type ServiceReadiness } from "./readiness.js";
import type { Logger } from "../logger.js";
import type { ForwardingPolicy } from "../services/client-address.js";

export interface ServerDeps {
  readonly services: ServiceDeps;
  readonly signingKeys: SigningKeys;
  readonly readiness: Readiness;
  readonly metrics: Registry;
  readonly corsOrigins: readonly string[];
  readonly maxMessageBytes: number;
  readonly maxDeadlineMs: number;
  readonly descriptorSetPath: string;
  readonly browserApp?: BrowserAppOptions;
  /** Gateway requests refused by the transport (bad encoding, undecodable message) are logged here. */
  readonly logger?: Logger;
  /** TLS on both listeners (TLS_CERT_FILE...); without it the gRPC port is h2c and the gateway HTTP. */
  readonly tls?: TlsFiles;
  /** Server metadata at /.well-known/openid-configuration and /.well-known/oauth-authorization-server. */
  readonly metadata?: ServerMetadata;
  /** TRUSTED_PROXIES (validated by config.ts): peers whose X-Forwarded-For is honoured on both ports. */
  readonly trustedProxies?: readonly string[];
  /** GRPC_MAX_CONNECTION_AGE_MS / _GRACE_MS (config.ts); left out, connections never age. */
  readonly grpcConnectionAge?: GrpcConnectionAge;
}

export interface ListenOptions {
  /** An IPv4 or IPv6 literal without brackets, or a host name (config.ts normalises BIND_HOST). */
  readonly host: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The Prometheus listener; loopback by default (config.ts). */
  readonly metricsHost: string;
  readonly metricsPort: number;
}

export interface Servers {
  readonly grpc: grpc.Server;
  readonly web: WebServer;
  readonly metrics: http.Server;
  readonly health: HealthImplementation;
  listen(options: ListenOptions): Promise<{ grpcPort: number; httpPort: number; metricsPort: number }>;
  close(graceMs?: number): Promise<void>;
}

/** host:port as grpc-js parses it: an IPv6 literal in brackets (`[::]:50051`). */
export function grpcAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function listenHttp(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeHttp(server: http.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!server.listening) return resolve();
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export function createServers(deps: ServerDeps): Servers {
  const routes = createRoutes(deps.services);
  // Which services need the database is declared once, in routes.ts (servedWithoutDatabase).
  const serviceReadiness: readonly ServiceReadiness[] = routes.map(({ service }) => ({
    name: service.typeName,
    needsDatabase: !servedWithoutDatabase.has(service),
  }));
  const health = new HealthImplementation(healthStatuses(readinessReport("ok", serviceReadiness)));
  const trusted = proxyaddr.compile([...(deps.trustedProxies ?? [])]);
  const grpcServer = createGrpcServer({
    routes,
    health,
    descriptorSetPath: deps.descriptorSetPath,
    maxMessageBytes: deps.maxMessageBytes,
    connectionAge: deps.grpcConnectionAge,
    // A service caller holding client-address.forward may forward too (resolved once per call by
    // the call policy; call.ts clientMeta reads it).
    forwarding: { trusted, honoursCallerPermission: true } satisfies ForwardingPolicy,
  });
  const web = createWebServer({
    routes,
    corsOrigins: deps.corsOrigins,
    maxMessageBytes: deps.maxMessageBytes,
    maxDeadlineMs: deps.maxDeadlineMs,
    jwks: () => deps.signingKeys.jwks(),
    metadata: deps.metadata,
    httpAuth: createHttpAuth({
      introspect: async (token, audience) => deps.services.callers.introspect(token, audience),
      // The same resolution and admission as an internal RPC's (policy.ts).
      admit: (info, permission) => {
        const caller = serviceCallerOf(info, deps.services.callers);
        admitService(info, caller, permission, deps.services.callers);
        return caller;
      },
      trustedProxy: (address) => trusted(address, 0),
      logger: deps.logger,
    }),
    ready: async () => ({ ...readinessReport(await deps.readiness.database(), serviceReadiness), revocationAgeMs: deps.readiness.revocationAgeMs() }),
    browserApp: deps.browserApp,
    logger: deps.logger,
    https: deps.tls !== undefined,
    forwarding: { trusted },
  });
  const metricsServer = createMetricsServer(deps.metrics);

  return {
    grpc: grpcServer,
    web,
    metrics: metricsServer,
    health,
    async listen({ host, grpcPort, httpPort, metricsHost, metricsPort }) {
      const address = grpcAddress(host, grpcPort);
      const { tls } = deps;
      if (tls) {
        // Read and checked before either port accepts a connection; the gRPC listener follows
        // the files by itself (grpc-js credentials), the gateway through onChange.
        web.useCertificate(await tls.loaded());
        tls.onChange((identity) => web.useCertificate(identity));
      }
      const credentials = tls?.grpcCredentials ?? grpc.ServerCredentials.createInsecure();
      const boundGrpc = await new Promise<number>((resolve, reject) =>
        grpcServer.bindAsync(address, credentials, (err, port) =>
          err ? reject(new Error(`gRPC listener could not bind ${address}: ${err.message}`)) : resolve(port),
        ),
      );
      const boundHttp = await listenHttp(web, httpPort, host);
      const boundMetrics = await listenHttp(metricsServer, metricsPort, metricsHost);
      deps.readiness.watch(health, serviceReadiness);
      return { grpcPort: boundGrpc, httpPort: boundHttp, metricsPort: boundMetrics };
    },
    async close(graceMs = 10_000) {
      deps.readiness.stop();
      // Nothing is served from here on: the overall status and every service say so.
      for (const name of ["", ...serviceReadiness.map((service) => service.name)]) health.setStatus(name, "NOT_SERVING");
      // Streams never finish by themselves: end them with OK first, so the grace period is for calls.
      deps.services.revocationStream.stop();
      const grpcDone = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          grpcServer.forceShutdown();
          resolve();
        }, graceMs);
        grpcServer.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      web.drain();
      await Promise.all([grpcDone, closeHttp(web, graceMs), closeHttp(metricsServer, graceMs)]);
      deps.tls?.stop();
    },
  };
}
