// How the tests call the sample backend (sample-backend.ts) through each middleware, with real
// clients: grpc-js and Connect clients for the RPC servers, fetch for Express and Fastify. Every
// answer is reduced to one shape, so one suite covers the four.
import type { StringValue } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createGrpcJsTransport } from "../support/transports.js";
import { Backend, type Route, type SampleBackends } from "./sample-backend.js";

export const MIDDLEWARES = ["grpc-js", "connect", "express", "fastify"] as const;
export type Middleware = (typeof MIDDLEWARES)[number];

export interface Answer {
  /** HTTP status, or the gRPC code's HTTP equivalent (OK 200, UNAUTHENTICATED 401, PERMISSION_DENIED 403, UNAVAILABLE 503). */
  readonly status: number;
  /** The WWW-Authenticate header (or trailer), if any. */
  readonly challenge: string | null;
  /** The principal the handler saw (null: none). */
  readonly principal: Record<string, unknown> | null;
}

const STATUS_OF: Partial<Record<Code, number>> = { [Code.Unauthenticated]: 401, [Code.PermissionDenied]: 403, [Code.Unavailable]: 503 };

type Unary = (request: Partial<StringValue>, options: { headers: Record<string, string> }) => Promise<StringValue>;

export interface BackendCaller {
  call(route: Route, token?: string, rawAuthorization?: string): Promise<Answer>;
  close(): void;
}

export function backendCaller(backends: SampleBackends, middleware: Middleware): BackendCaller {
  const headersOf = (token?: string, raw?: string): Record<string, string> =>
    raw !== undefined ? { authorization: raw } : token !== undefined ? { authorization: `Bearer ${token}` } : {};

  if (middleware === "express" || middleware === "fastify") {
    const base = middleware === "express" ? backends.expressUrl : backends.fastifyUrl;
    return {
      async call(route, token, raw) {
        const res = await fetch(`${base}/${route}`, { headers: headersOf(token, raw) });
        const body = (await res.json()) as Record<string, unknown> | null;
        return { status: res.status, challenge: res.headers.get("www-authenticate"), principal: res.status === 200 ? body : null };
      },
      close() {},
    };
  }

  const grpc = middleware === "grpc-js" ? createGrpcJsTransport(backends.grpcAddress) : undefined;
  const transport = grpc ?? createConnectTransport({ baseUrl: backends.connectUrl, httpVersion: "1.1" });
  const client = createClient(Backend, transport) as unknown as Record<Route, Unary>;
  return {
    async call(route, token, raw) {
      try {
        const response = await client[route]({ value: "" }, { headers: headersOf(token, raw) });
        return { status: 200, challenge: null, principal: JSON.parse(response.value) as Record<string, unknown> | null };
      } catch (error) {
        if (!(error instanceof ConnectError)) throw error;
        const status = STATUS_OF[error.code];
        if (status === undefined) throw error;
        return { status, challenge: error.metadata.get("www-authenticate"), principal: null };
      }
    },
    close: () => grpc?.close(),
  };
}
