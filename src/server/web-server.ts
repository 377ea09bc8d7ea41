// The browser gateway (connect-node over HTTP/1.1): gRPC-web and Connect protocols for the
// public RPCs, CORS for the configured origins, health probes and the JWKS document.
import http from "node:http";
import corsMiddleware from "cors";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { cors as connectCors, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createContextValues } from "@connectrpc/connect";
import { callInfoKey, normalizeAddress } from "../services/call.js";
import type { Registry } from "prom-client";
import type { PublicJwk } from "../domain/signing-keys.js";

export interface WebServerOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly internalMethods: ReadonlySet<DescMethod>;
  readonly corsOrigins: readonly string[];
  readonly maxMessageBytes: number;
  readonly maxDeadlineMs: number;
  readonly jwks: () => readonly PublicJwk[];
  readonly ready: () => Promise<boolean>;
  readonly metrics: Registry;
}

/** Passes registrations through, leaving out internal RPCs (they answer UNIMPLEMENTED here). */
function publicOnly(router: ConnectRouter, internal: ReadonlySet<DescMethod>): ConnectRouter {
  const filtered: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service: DescService, impl, options) {
      const kept = Object.fromEntries(
        service.methods.filter((m) => !internal.has(m)).map((m) => [m.localName, (impl as Record<string, unknown>)[m.localName]]),
      );
      router.service(service, kept as typeof impl, options);
      return filtered;
    },
    rpc(method, impl, options) {
      if (!internal.has(method)) router.rpc(method, impl, options);
      return filtered;
    },
  };
  return filtered;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, cacheControl = "no-store"): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "cache-control": cacheControl, "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

export function createWebServer(options: WebServerOptions): http.Server {
  const rpc = connectNodeAdapter({
    routes: (router) => options.routes(publicOnly(router, options.internalMethods)),
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: 4 * 1024 * 1024,
    contextValues: (req) =>
      createContextValues().set(callInfoKey, {
        header: (name: string) => {
          const value = req.headers[name];
          return Array.isArray(value) ? value[0] : value;
        },
        peerAddress: normalizeAddress(req.socket.remoteAddress),
      }),
  });
  const cors = corsMiddleware({
    origin: (origin, callback) => callback(null, origin !== undefined && (options.corsOrigins.includes("*") || options.corsOrigins.includes(origin))),
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, "Authorization", "X-Request-Id"],
    exposedHeaders: [...connectCors.exposedHeaders, "X-Request-Id"],
    credentials: true,
    maxAge: 7200,
  });

  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (req.method === "GET" && path === "/readyz") {
      options.ready().then(
        (ready) => sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready" }),
        () => sendJson(res, 503, { status: "not ready" }),
      );
      return;
    }
    if (req.method === "GET" && path === "/metrics") {
      options.metrics.metrics().then(
        (body) => {
          res.writeHead(200, { "content-type": options.metrics.contentType });
          res.end(body);
        },
        () => sendJson(res, 500, { status: "metrics unavailable" }),
      );
      return;
    }
    if (req.method === "GET" && path === "/.well-known/jwks.json") {
      return sendJson(res, 200, { keys: options.jwks() }, "public, max-age=300");
    }
    cors(req, res, () => rpc(req, res));
  });
  server.requestTimeout = options.maxDeadlineMs + 5_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  return server;
}
