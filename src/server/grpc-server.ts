// The native gRPC server (grpc-js; h2c, or TLS when servers.ts binds it with TLS credentials).
// It mounts every method of the routes (services/routes.ts) through one adapter, plus
// grpc.health.v1 and server reflection (v1 and v1alpha) serving the descriptor set's files as
// built, custom options included.
import { readFileSync } from "node:fs";
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import * as grpc from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation } from "grpc-health-check";
import { toConnectError } from "../services/errors.js";
import type { PolicyHandler } from "../services/policy.js";
import type { ForwardingPolicy } from "../services/client-address.js";
import type { Route } from "../services/routes.js";
import { GrpcHandlerContext } from "./grpc-context.js";

export interface GrpcServerOptions {
  readonly routes: readonly Route[];
  readonly health: HealthImplementation;
  readonly descriptorSetPath: string;
  readonly maxMessageBytes: number;
  /** Who may pass the end user's address (TRUSTED_PROXIES, or a caller holding client-address.forward). */
  readonly forwarding?: ForwardingPolicy;
  /** When connections are asked to reconnect (GOAWAY); left out, never. */
  readonly connectionAge?: GrpcConnectionAge;
}

/** grpc.max_connection_age_ms and grpc.max_connection_age_grace_ms; 0 / undefined: no limit. */
export interface GrpcConnectionAge {
  readonly maxAgeMs: number;
  readonly maxAgeGraceMs: number | undefined;
}

/**
 * The channel options for a connection age. A client holds one HTTP/2 connection for as long as
 * it can; behind an L4 balancer (a Kubernetes Service, kube-proxy) that pins it to one replica
 * for good, and replicas started later get none of its calls. After max_connection_age the
 * server sends GOAWAY with the highest stream id (calls in flight finish), the client opens a
 * new connection for its next call, and the balancer places that one afresh.
 */
export function connectionAgeOptions(age: GrpcConnectionAge | undefined): grpc.ServerOptions {
  if (!age || age.maxAgeMs === 0) return {};
  return {
    "grpc.max_connection_age_ms": age.maxAgeMs,
    ...(age.maxAgeGraceMs === undefined ? {} : { "grpc.max_connection_age_grace_ms": age.maxAgeGraceMs }),
  };
}

/** A request that did not decode; the handler answers INVALID_ARGUMENT instead of crashing. */
const undecodable = Symbol("undecodable");

/**
 * Encodes a response. A frozen message is one a handler answers call after call (VerifyToken's
 * answer for a token, token-service.ts): it is encoded once and its bytes kept while it lives.
 */
function serializer(schema: DescMessage) {
  const encoded = new WeakMap<object, Buffer>();
  const encode = (value: unknown) => Buffer.from(toBinary(schema, isMessage(value, schema) ? value : create(schema, value as never)));
  return (value: unknown) => {
    if (!Object.isFrozen(value)) return encode(value);
    let bytes = encoded.get(value as object);
    if (!bytes) encoded.set(value as object, (bytes = encode(value)));
    return bytes;
  };
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer) => {
    try {
      return fromBinary(schema, bytes);
    } catch {
      return undecodable;
    }
  };
}

export function toServiceError(error: ConnectError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  const trailer = setTrailerStatus(new Headers(), error);
  const details = trailer.get("grpc-status-details-bin");
  if (details) metadata.set("grpc-status-details-bin", Buffer.from(details, "base64"));
  return { code: error.code as number as grpc.status, details: error.rawMessage, metadata };
}

/** The status of a failed call, with the headers the handler set (x-request-id) in its trailers. */
function failureStatus(err: unknown, ctx: GrpcHandlerContext): Partial<grpc.StatusObject> {
  const status = toServiceError(err instanceof ConnectError ? err : toConnectError(err));
  const { header } = ctx.takeResponseMetadata();
  if (header) status.metadata!.merge(header);
  return status;
}

function unaryHandler(service: DescService, method: DescMethod, handler: PolicyHandler, forwarding: ForwardingPolicy | undefined): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const ctx = new GrpcHandlerContext(service, method, call, grpc.Metadata, forwarding);
    const answer = (response: unknown) => {
      const { header, trailer } = ctx.takeResponseMetadata();
      if (header) call.sendMetadata(header);
      callback(null, response, trailer);
    };
    const refuse = (err: unknown) => callback(failureStatus(err, ctx));
    let result: unknown;
    try {
      if (call.request === undecodable) throw new ConnectError("request message could not be decoded", Code.InvalidArgument);
      result = handler(call.request, ctx);
    } catch (err) {
      refuse(err);
      return;
    }
    // The policy answers a handler that needed no I/O at once (VerifyToken): so does this.
    if (result instanceof Promise) result.then(answer, refuse);
    else answer(result);
  };
}

/**
 * A server-streaming method: the policy handler's messages are written as they come, waiting
 * for the transport to drain when its buffer is full; the stream ends with OK when the handler
 * returns, with the mapped status when it throws, and the handler is stopped (its generator
 * returned) when the client cancels.
 */
function serverStreamHandler(service: DescService, method: DescMethod, handler: PolicyHandler, forwarding: ForwardingPolicy | undefined): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const ctx = new GrpcHandlerContext(service, method, call as unknown as grpc.ServerUnaryCall<unknown, unknown>, grpc.Metadata, forwarding);
    let cancelled = false;
    let headerSent = false;
    call.once("cancelled", () => (cancelled = true));
    const run = async () => {
      if (call.request === undecodable) throw new ConnectError("request message could not be decoded", Code.InvalidArgument);
      const messages = handler(call.request, ctx) as AsyncIterable<unknown>;
      for await (const message of messages) {
        if (cancelled) break;
        if (!headerSent) {
          const { header } = ctx.takeResponseMetadata();
          if (header) call.sendMetadata(header);
          headerSent = true;
        }
        if (!call.write(message)) await new Promise<void>((resolve) => {
          const done = () => {
            call.off("drain", done);
            call.off("cancelled", done);
            resolve();
          };
          call.on("drain", done);
          call.on("cancelled", done);
        });
      }
    };
    run().then(
      () => {
        if (cancelled) return;
        const { header, trailer } = ctx.takeResponseMetadata();
        // A stream that sent no message has not sent its headers yet.
        if (header && !headerSent) call.sendMetadata(header);
        call.end(trailer);
      },
      (err: unknown) => {
        if (!cancelled) call.emit("error", failureStatus(err, ctx));
      },
    );
  };
}

function definitionOf({ service, methods }: Route, forwarding: ForwardingPolicy | undefined): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  // Internal methods too: this is the port backend services call.
  for (const { method, handler } of methods) {
    const streaming = method.methodKind === "server_streaming";
    if (!streaming && method.methodKind !== "unary") throw new Error(`${method.name}: only unary and server-streaming RPCs are supported`);
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: streaming,
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
    handlers[method.localName] = streaming ? serverStreamHandler(service, method, handler, forwarding) : unaryHandler(service, method, handler, forwarding);
  }
  return [definition as grpc.ServiceDefinition, handlers];
}

/** The raw FileDescriptorProtos of the buf-built set, imports included (grpc/grpc-node#3018). */
export function loadFileDescriptorProtos(path: string): Buffer[] {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(path));
  return set.file.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
}

/** What @grpc/reflection keeps per protocol version (private state; see below). */
interface ReflectionInternals {
  readonly files: Record<string, object>;
  readonly fileEncodings: Map<object, Uint8Array>;
}

/**
 * @grpc/reflection decodes each file with protobufjs and serves it re-encoded, which drops every
 * option protobufjs does not know, among them `(identity.v1.access)`: grpcurl `describe` would
 * not show who may call an RPC. This serves the files' original bytes instead. It reaches into
 * the library's private state, checked here: after an upgrade that changes it, the server still
 * starts and reflection still works, without custom options, with a warning on stderr, and
 * test/server/reflection.test.ts fails so that the upgrade cannot land unnoticed.
 */
function serveOriginalFiles(reflection: ReflectionService, fileDescriptorProtos: readonly Buffer[]): void {
  const originals = new Map(fileDescriptorProtos.map((bytes) => [fromBinary(FileDescriptorProtoSchema, bytes).name, bytes]));
  const versions = reflection as unknown as Record<"v1" | "v1Alpha", Partial<ReflectionInternals> | undefined>;
  for (const version of ["v1", "v1Alpha"] as const) {
    const internals = versions[version];
    if (!internals || typeof internals.files !== "object" || !(internals.fileEncodings instanceof Map)) {
      throw new Error(`@grpc/reflection changed: cannot serve the original descriptors for ${version}`);
    }
    for (const [name, file] of Object.entries(internals.files)) {
      const original = originals.get(name);
      if (original === undefined || !internals.fileEncodings.has(file)) throw new Error(`@grpc/reflection changed: no encoding of ${name} to replace`);
      internals.fileEncodings.set(file, original);
    }
  }
}

export function createGrpcServer({ routes, health, descriptorSetPath, maxMessageBytes, forwarding, connectionAge }: GrpcServerOptions): grpc.Server {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": 4 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
    ...connectionAgeOptions(connectionAge),
  });
  for (const route of routes) server.addService(...definitionOf(route, forwarding));
  health.addToServer(server);
  const fileDescriptorProtos = loadFileDescriptorProtos(descriptorSetPath);
  const reflection = new ReflectionService({ all: { fileDescriptorProtos } } as unknown as PackageDefinition);
  try {
    serveOriginalFiles(reflection, fileDescriptorProtos);
  } catch (err) {
    process.emitWarning(`${(err as Error).message}; server reflection omits custom options such as (identity.v1.access)`);
  }
  reflection.addToServer(server);
  return server;
}
