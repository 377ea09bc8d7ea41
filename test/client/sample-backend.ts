// A sample backend that protects its routes with each of the client library's middlewares: a
// grpc-js server with grpcInterceptor, a connect-node server with connectInterceptor, an Express
// app and a Fastify app. Every one serves the same routes:
//   whoami  any person's active token                        -> the principal as JSON
//   admin   requireRole "admin"
//   mfa     requireAmr ["mfa"] (a session completed with a second factor)
//   recent  maxAuthAge 0 (younger than any real authentication: always a step-up)
//   service a service token for the audience "sample" (allowServices)
//   open    no token needed
// The gRPC service is built at run time from a FileDescriptorProto (google.protobuf.StringValue
// in and out), so the backend has no proto of its own.
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { create, createFileRegistry, fromBinary, toBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_wrappers, StringValueSchema, type StringValue } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import express from "express";
import Fastify from "fastify";
import * as sourceLibrary from "../../src/client/index.js";
import type { Policy, Principal, TokenVerifier } from "../../src/client/index.js";

export const ROUTES = ["whoami", "admin", "mfa", "recent", "service", "open"] as const;
export type Route = (typeof ROUTES)[number];

export const POLICIES: Record<Route, Policy | false> = {
  whoami: {},
  admin: { requireRole: "admin" },
  mfa: { requireAmr: ["mfa"] },
  recent: { maxAuthAge: 0 },
  service: { allowServices: true, audience: "sample" },
  open: false,
};

const file = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "sample/v1/backend.proto",
    package: "sample.v1",
    syntax: "proto3",
    dependency: ["google/protobuf/wrappers.proto"],
    service: [
      {
        name: "Backend",
        method: ROUTES.map((name) => ({ name, inputType: ".google.protobuf.StringValue", outputType: ".google.protobuf.StringValue" })),
      },
    ],
  }),
  (name) => (name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined),
);
export const Backend: DescService = file.getService("sample.v1.Backend")!;

const describe = (principal: Principal | undefined | null) => JSON.stringify(principal ?? null);

export interface SampleBackends {
  /** host:port of the grpc-js server. */
  readonly grpcAddress: string;
  /** Base URLs of the connect-node server, the Express app and the Fastify app. */
  readonly connectUrl: string;
  readonly expressUrl: string;
  readonly fastifyUrl: string;
  close(): Promise<void>;
}

async function listen(server: HttpServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * The middlewares and context keys the backend uses. In the tests' own process they come from
 * src/client; the backend as a process of its own (sample-backend-main.ts) passes the package
 * build (`grpc-identity/client`), so the key an interceptor sets is the key the handler reads.
 */
export type ClientLibrary = Pick<typeof sourceLibrary, "connectInterceptor" | "expressMiddleware" | "fastifyPlugin" | "grpcInterceptor" | "principalKey" | "principalOf">;

export async function startSampleBackends(verifier: TokenVerifier, library: ClientLibrary = sourceLibrary): Promise<SampleBackends> {
  const { connectInterceptor, expressMiddleware, fastifyPlugin, grpcInterceptor, principalKey, principalOf } = library;
  // grpc-js: the handler reads the principal with principalOf(call).
  const grpcServer = new grpc.Server({
    interceptors: [grpcInterceptor(verifier, { policies: Object.fromEntries(ROUTES.map((r) => [`/sample.v1.Backend/${r}`, POLICIES[r]])) })],
  });
  const definition: Record<string, grpc.MethodDefinition<StringValue, StringValue>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const route of ROUTES) {
    definition[route] = {
      path: `/sample.v1.Backend/${route}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (m: StringValue) => Buffer.from(toBinary(StringValueSchema, m)),
      requestDeserialize: (b: Buffer) => fromBinary(StringValueSchema, b),
      responseSerialize: (m: StringValue) => Buffer.from(toBinary(StringValueSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(StringValueSchema, b),
    };
    const handler: grpc.handleUnaryCall<StringValue, StringValue> = (call, callback) =>
      callback(null, create(StringValueSchema, { value: describe(principalOf(call)) }));
    implementation[route] = handler;
  }
  grpcServer.addService(definition, implementation);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );

  // connect-node: the handler reads ctx.values.get(principalKey).
  const impl = Object.fromEntries(
    ROUTES.map((route) => [route, (_: StringValue, ctx: HandlerContext) => create(StringValueSchema, { value: describe(ctx.values.get(principalKey)) })]),
  ) as unknown as ServiceImpl<DescService>;
  const connectServer = createServer(
    connectNodeAdapter({
      routes: (router) => router.service(Backend, impl),
      interceptors: [connectInterceptor(verifier, { policies: Object.fromEntries(ROUTES.map((r) => [`sample.v1.Backend/${r}`, POLICIES[r]])) })],
    }),
  );

  // Express: per-route middleware; the handler reads req.principal (or res.locals.principal).
  const app = express();
  for (const route of ROUTES) {
    const policy = POLICIES[route];
    const send = (req: express.Request, res: express.Response) => {
      res.type("application/json").send(describe((req as { principal?: Principal }).principal));
    };
    if (policy === false) app.get(`/${route}`, send);
    else app.get(`/${route}`, expressMiddleware(verifier, policy), send);
  }
  const expressServer = createServer(app);

  // Fastify: the plugin on the instance, each route's policy in its config.
  const fastify = Fastify();
  await fastify.register(fastifyPlugin(verifier));
  for (const route of ROUTES) {
    fastify.get(`/${route}`, { config: { identity: POLICIES[route] } }, async (request, reply) =>
      reply.type("application/json").send(describe((request as unknown as { principal: Principal | null }).principal)),
    );
  }
  await fastify.listen({ port: 0, host: "127.0.0.1" });

  const [connectUrl, expressUrl] = await Promise.all([listen(connectServer), listen(expressServer)]);
  return {
    grpcAddress: `127.0.0.1:${grpcPort}`,
    connectUrl,
    expressUrl,
    fastifyUrl: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`,
    async close() {
      grpcServer.forceShutdown();
      connectServer.closeAllConnections();
      expressServer.closeAllConnections();
      await Promise.all([
        new Promise<void>((resolve) => connectServer.close(() => resolve())),
        new Promise<void>((resolve) => expressServer.close(() => resolve())),
        fastify.close(),
      ]);
    },
  };
}
