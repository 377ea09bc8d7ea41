// Builds both servers from their dependencies without listening; `listen` binds them and
// `close` drains them. main.ts and the tests (on port 0) are the only callers.
import type http from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { createGrpcServer } from "./grpc-server.js";
import { createWebServer, type BrowserAppOptions } from "./web-server.js";
import { internalMethods, routes, services, type ServiceDeps } from "../services/routes.js";
import type { SigningKeys } from "../domain/signing-keys.js";
import type { Registry } from "prom-client";
import type { Readiness } from "./readiness.js";

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
}

export interface Servers {
  readonly grpc: grpc.Server;
  readonly web: http.Server;
  readonly health: HealthImplementation;
  listen(host: string, grpcPort: number, httpPort: number): Promise<{ grpcPort: number; httpPort: number }>;
  close(graceMs?: number): Promise<void>;
}

export function createServers(deps: ServerDeps): Servers {
  const health = new HealthImplementation({ "": "SERVING", ...Object.fromEntries(services.map((s) => [s.typeName, "SERVING" as const])) });
  const register = routes(deps.services);
  const grpcServer = createGrpcServer({
    routes: register,
    health,
    descriptorSetPath: deps.descriptorSetPath,
    maxMessageBytes: deps.maxMessageBytes,
  });
  const web = createWebServer({
    routes: register,
    internalMethods,
    corsOrigins: deps.corsOrigins,
    maxMessageBytes: deps.maxMessageBytes,
    maxDeadlineMs: deps.maxDeadlineMs,
    jwks: () => deps.signingKeys.jwks(),
    ready: () => deps.readiness.check(),
    metrics: deps.metrics,
    browserApp: deps.browserApp,
  });

  return {
    grpc: grpcServer,
    web,
    health,
    async listen(host, grpcPort, httpPort) {
      const boundGrpc = await new Promise<number>((resolve, reject) =>
        grpcServer.bindAsync(`${host}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
      await new Promise<void>((resolve, reject) => {
        web.once("error", reject);
        web.listen(httpPort, host, () => {
          web.off("error", reject);
          resolve();
        });
      });
      deps.readiness.watch(health, services.map((s) => s.typeName));
      return { grpcPort: boundGrpc, httpPort: (web.address() as AddressInfo).port };
    },
    async close(graceMs = 10_000) {
      deps.readiness.stop();
      health.setStatus("", "NOT_SERVING");
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
      const webDone = new Promise<void>((resolve) => {
        if (!web.listening) return resolve();
        const timer = setTimeout(() => web.closeAllConnections(), graceMs);
        web.close(() => {
          clearTimeout(timer);
          resolve();
        });
        web.closeIdleConnections();
      });
      await Promise.all([grpcDone, webDone]);
    },
  };
}
