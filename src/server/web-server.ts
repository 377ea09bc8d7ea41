// The browser gateway (connect-node over HTTP/1.1): gRPC-web and Connect protocols for the
// public and user RPCs (as their proto declares), CORS for the configured origins, health probes,
// the JWKS and server metadata documents (well-known.ts) and the web app.
//
// A call carrying an Origin header comes from a page in a browser (page script can neither
// forge nor drop that header). Such calls are refused unless the origin is the gateway's own or
// one of CORS_ORIGINS; the others are marked as browser calls (CallInfo.browser), for which the
// refresh token travels only in an HttpOnly cookie. Calls without Origin (gRPC clients, servers,
// curl) are not browser calls and keep getting the refresh token in messages.
//
// Every RPC answer is `Cache-Control: no-store` (several carry tokens: RFC 6749 §5.1). Errors
// connect-node raises before a handler runs (unsupported encoding, undecodable message, size
// limit) get an ErrorInfo like every other error and one "rpc refused" log line. Metrics are
// not served here (metrics-server.ts).
import http from "node:http";
import https from "node:https";
import corsMiddleware from "cors";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, cors as connectCors, createContextKey, type ConnectRouter, type HandlerContext, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { createContextValues } from "@connectrpc/connect";
import { callInfoKey, isLoopback, normalizeAddress } from "../services/call.js";
import { errorToJson } from "@connectrpc/connect/protocol-connect";
import { AppError } from "../domain/errors.js";
import { annotateTransportError, toConnectError } from "../services/errors.js";
import { servedByGateway } from "../services/access.js";
import type { ForwardingPolicy } from "../services/client-address.js";
import type { Route } from "../services/routes.js";
import type { Logger } from "../logger.js";
import type { ReadinessReport } from "./readiness.js";
import type { PublicJwk } from "../domain/tokens/signing-keys.js";
import type { DevOutbox } from "../delivery/dev-outbox.js";
import { browserSession, refreshCookieName } from "./refresh-cookie.js";
import { createWebApp } from "./web-app.js";
import { DISCOVERY_PATHS, type ServerMetadata } from "./well-known.js";

/** What the gateway needs to serve the browser app and its sessions. */
export interface BrowserAppOptions {
  /** The built app (index.html, app.js, app.css); without it / is not served. */
  readonly appDir?: string;
  /** PUBLIC_URL: the origin browsers reach the gateway at. https names the cookie `__Host-`. */
  readonly publicUrl?: string;
  /** Development only: the console provider's messages, at GET /dev/outbox (loopback only). */
  readonly devOutbox?: DevOutbox;
}

export interface WebServerOptions {
  readonly routes: readonly Route[];
  readonly corsOrigins: readonly string[];
  readonly maxMessageBytes: number;
  readonly maxDeadlineMs: number;
  readonly jwks: () => readonly PublicJwk[];
  /** GET /authz and POST /oauth2/introspect (http-auth.ts); not served without. */
  readonly httpAuth?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  /** Served at both discovery paths (well-known.ts). */
  readonly metadata?: ServerMetadata;
  /** GET /readyz: the database's state and each service's status (readiness.ts). */
  readonly ready: () => Promise<ReadinessReport>;
  readonly browserApp?: BrowserAppOptions;
  readonly logger?: Logger;
  /**
   * Serve HTTPS: the server is created without a certificate, and its owner sets one with
   * setSecureContext() before listening and again whenever the files change (servers.ts).
   */
  readonly https?: boolean;
  /**
   * TRUSTED_PROXIES: X-Forwarded-For is honoured from these peers only (no caller permission
   * here: the gateway serves public and user RPCs, whose callers hold none).
   */
  readonly forwarding?: ForwardingPolicy;
}

/**
 * Registers what the gateway may serve: every service, with its public and user methods (as
 * their proto declares, services/access.ts). connect-node answers any other method
 * UNIMPLEMENTED, as it does any method a service leaves out, after decoding the request like
 * any other.
 */
function registerPublic(router: ConnectRouter, routes: readonly Route[]): void {
  for (const { service, methods } of routes) {
    const served: Record<string, unknown> = Object.fromEntries(methods.filter((m) => servedByGateway(m.access)).map((m) => [m.method.localName, m.handler]));
    // Typed by the generic descriptor: the handlers are typed where routes.ts builds them.
    router.service(service, served as Partial<ServiceImpl<DescService>>);
  }
}

/** A JSON answer, `Cache-Control: no-store` unless `headers` says otherwise (the gateway's and http-auth.ts's). */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { "cache-control": "no-store", ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/** Whether the call reached the ServiceImpl (whose policy wrapper maps and logs its errors). */
const handlerReached = createContextKey<{ value: boolean } | undefined>(undefined, { description: "handler reached" });

/**
 * A streaming call's request is parsed lazily, inside the handler's reading of it, and
 * connect-node answers a parse failure there as INTERNAL; a unary call's is INVALID_ARGUMENT.
 * The same here: a request that does not decode is the client's fault (the gateway serves no
 * streaming RPC, but answers one like any other unserved method).
 */
const streamedRequestsDecode: Interceptor = (next) => (req) => {
  if (!req.stream) return next(req);
  const messages = req.message;
  return next({
    ...req,
    message: (async function* () {
      try {
        yield* messages;
      } catch (err) {
        if (err instanceof ConnectError && err.code !== Code.Internal) throw err;
        throw new ConnectError("request message could not be decoded", Code.InvalidArgument, undefined, undefined, err);
      }
    })(),
  });
};

const markHandlerReached: Interceptor = (next) => (req) => {
  const reached = req.contextValues.get(handlerReached);
  if (reached) reached.value = true;
  return next(req);
};

/**
 * Runs before the request body is read. connect-node aborts the call's signal with the error it
 * is about to serialise; one that was raised before the handler ran gets its ErrorInfo there.
 */
function watchTransportErrors(ctx: HandlerContext, logger: Logger | undefined): void {
  const reached = { value: false };
  ctx.values.set(handlerReached, reached);
  ctx.signal.addEventListener(
    "abort",
    () => {
      const error: unknown = ctx.signal.reason;
      if (reached.value || !(error instanceof ConnectError) || error.code === Code.Canceled) return;
      const reason = annotateTransportError(error);
      if (reason === undefined) return;
      // A client's malformed request, not a server fault: info, and never the message (a JSON
      // decode error quotes the request's values).
      logger?.info(
        {
          rpc: `${ctx.service.typeName}/${ctx.method.name}`,
          protocol: ctx.protocolName,
          status: Code[error.code],
          reason,
          peer: ctx.values.get(callInfoKey).peerAddress,
        },
        "rpc refused",
      );
    },
    { once: true },
  );
}

/** The gateway's HTTP server; `drain` starts a graceful shutdown (see below). */
export interface WebServer extends http.Server {
  /**
   * From now on no new call is served: a request arriving on a kept-alive connection gets 503
   * UNAVAILABLE with `connection: close`, and calls in flight finish but close their connection
   * (server.close() alone only stops new connections, so a client reusing one kept another
   * request running after SIGTERM).
   */
  drain(): void;
  /** With `https`: the certificate and key new connections get (existing ones keep theirs). */
  useCertificate(identity: { readonly cert: Buffer; readonly key: Buffer }): void;
}

export function createWebServer(options: WebServerOptions): WebServer {
  const browser = options.browserApp ?? {};
  const publicOrigin = browser.publicUrl === undefined ? undefined : new URL(browser.publicUrl).origin;
  const tls = publicOrigin?.startsWith("https:") ?? false;
  const cookieName = refreshCookieName(tls);
  const app = browser.appDir === undefined ? undefined : createWebApp(browser.appDir, tls);
  /** CORS_ORIGINS: pages elsewhere that may call the gateway. */
  const listed = (origin: string): boolean => options.corsOrigins.includes("*") || options.corsOrigins.includes(origin);
  /**
   * Those, and the gateway's own origin: PUBLIC_URL (required in production), else, in
   * development, what the Host header names, but only a loopback name: any other Host is one a
   * DNS-rebinding page can choose along with its Origin.
   */
  const ownOrigin = (req: http.IncomingMessage): string | undefined => {
    if (publicOrigin !== undefined) return publicOrigin;
    const host = (req.headers.host ?? "").toLowerCase();
    return LOOPBACK_HOST.test(host) ? `${options.https ? "https" : "http"}://${host}` : undefined;
  };
  const trusted = (origin: string, req: http.IncomingMessage): boolean => listed(origin) || origin === ownOrigin(req);

  const rpc = connectNodeAdapter({
    routes: (router) => registerPublic(router, options.routes),
    grpc: false,
    grpcWeb: true,
    connect: true,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: 4 * 1024 * 1024,
    // gzip only: any other content-encoding / grpc-encoding is UNIMPLEMENTED (Connect and gRPC
    // compression specs) with the accepted list in accept-encoding / grpc-accept-encoding.
    acceptCompression: [compressionGzip],
    requestGate: (ctx) => watchTransportErrors(ctx, options.logger),
    interceptors: [streamedRequestsDecode, markHandlerReached],
    contextValues: (req) =>
      createContextValues().set(callInfoKey, {
        header: (name: string) => {
          const value = req.headers[name];
          return Array.isArray(value) ? value[0] : value;
        },
        peerAddress: normalizeAddress(req.socket.remoteAddress),
        forwarding: options.forwarding,
        gateway: true,
        browser: req.headers.origin === undefined ? undefined : browserSession(req.headers.cookie, cookieName),
      }),
  });
  const cors = corsMiddleware({
    origin: (origin, callback) => callback(null, origin !== undefined && listed(origin)),
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, "Authorization", "X-Request-Id"],
    exposedHeaders: [...connectCors.exposedHeaders, "X-Request-Id"],
    credentials: true,
    maxAge: 7200,
  });

  let draining = false;
  const inFlight = new Set<http.ServerResponse>();
  const handler: http.RequestListener = (req, res) => {
    if (draining) {
      res.shouldKeepAlive = false;
      return sendJson(res, 503, errorToJson(toConnectError(new AppError("UNAVAILABLE", "the gateway is shutting down")), undefined));
    }
    inFlight.add(res);
    res.once("close", () => inFlight.delete(res));
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (req.method === "GET" && path === "/readyz") {
      // 503 while the database is not ready, even though some services still answer: a load
      // balancer in front of the gateway sends browsers, whose flows (sign-in, refresh) need it.
      // The body says which services serve; gRPC clients ask grpc.health.v1 per service.
      options.ready().then(
        (report) => {
          const ready = report.database === "ok";
          sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", ...report });
        },
        () => sendJson(res, 503, { status: "not ready" }),
      );
      return;
    }
    if (req.method === "GET" && path === "/.well-known/jwks.json") {
      return sendJson(res, 200, { keys: options.jwks() }, { "cache-control": "public, max-age=300" });
    }
    if (req.method === "GET" && options.metadata && DISCOVERY_PATHS.has(path ?? "")) {
      return sendJson(res, 200, options.metadata, { "cache-control": "public, max-age=300" });
    }
    if (options.httpAuth?.(req, res)) return;
    if (req.method === "GET" && path === "/dev/outbox" && browser.devOutbox) {
      // Codes that sign anyone in: only for a browser on this machine, reached by a loopback
      // name (a DNS-rebound name fails the Host check).
      if (!isLoopback(normalizeAddress(req.socket.remoteAddress)) || !LOOPBACK_HOST.test(req.headers.host ?? "")) {
        return sendJson(res, 403, { status: "the development outbox is served to loopback clients only" });
      }
      return sendJson(res, 200, { messages: browser.devOutbox.list() });
    }
    if (app?.(req, res)) return;
    cors(req, res, () => {
      const origin = req.headers.origin;
      if (origin !== undefined && !trusted(origin, req)) {
        // CORS already keeps such a page from reading answers; this keeps it from acting at all.
        // A Connect error body (code, message, ErrorInfo ORIGIN_NOT_ALLOWED) like every other error.
        const refusal = toConnectError(new AppError("ORIGIN_NOT_ALLOWED", `origin ${origin} not allowed`));
        return sendJson(res, 403, errorToJson(refusal, undefined));
      }
      // Answers carry access and refresh tokens, MFA secrets and backup codes: no cache keeps them.
      res.setHeader("cache-control", "no-store");
      res.setHeader("pragma", "no-cache");
      rpc(req, res);
    });
  };
  // One handler either way; https.Server is an http.Server with TLS underneath.
  const server: http.Server = options.https ? https.createServer({}, handler) : http.createServer(handler);
  server.requestTimeout = options.maxDeadlineMs + 5_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  return Object.assign(server, {
    useCertificate(identity: { readonly cert: Buffer; readonly key: Buffer }) {
      if (!(server instanceof https.Server)) throw new Error("the gateway was created without https");
      server.setSecureContext({ cert: identity.cert, key: identity.key });
    },
    drain() {
      draining = true;
      for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    },
  });
}
