// Real clients for the contract suite: grpc-js on the gRPC port, Connect and gRPC-web on the
// gateway. The grpc-js client is wrapped in Connect's Transport interface so one suite can
// drive all three through the same generated client.
import { create, fromBinary, toBinary, type DescMessage, type DescMethodStreaming, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import type { DescService } from "@bufbuild/protobuf";
import type { TestService } from "./service.js";

function metadataToHeaders(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, value] of Object.entries(metadata.getMap())) {
    headers.append(key, typeof value === "string" ? value : Buffer.from(value).toString("base64"));
  }
  return headers;
}

/**
 * A Connect Transport that speaks through a real @grpc/grpc-js client; plaintext (h2c) unless
 * given credentials. `options` are channel options (a local subchannel pool for a connection of its own).
 */
export function createGrpcJsTransport(address: string, credentials = grpc.credentials.createInsecure(), options?: grpc.ChannelOptions): Transport & { close(): void } {
  const client = new grpc.Client(address, credentials, options);
  return {
    close: () => client.close(),
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
    ) {
      const metadata = new grpc.Metadata();
      new Headers(header).forEach((value, key) => metadata.add(key, value));
      return new Promise<UnaryResponse<I, O>>((resolve, reject) => {
        let responseHeader = new Headers();
        const call = client.makeUnaryRequest(
          `/${method.parent.typeName}/${method.name}`,
          (message: MessageInitShape<I>) => Buffer.from(toBinary(method.input, create(method.input, message))),
          (bytes: Buffer) => fromBinary(method.output, bytes),
          input,
          metadata,
          timeoutMs ? { deadline: Date.now() + timeoutMs } : {},
          (err, message) => {
            if (err) {
              const trailer = metadataToHeaders(err.metadata ?? new grpc.Metadata());
              reject(findTrailerError(trailer) ?? new ConnectError(err.details, err.code as number as Code, trailer));
              return;
            }
            resolve({ stream: false, service: method.parent, method, header: responseHeader, message: message!, trailer: new Headers() });
          },
        );
        call.on("metadata", (md) => (responseHeader = metadataToHeaders(md)));
        signal?.addEventListener("abort", () => call.cancel());
      });
    },
    // Server streaming only (WatchRevocations): the one request message, then the stream's
    // messages as they arrive; a status other than OK rejects the iteration with its ConnectError.
    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") throw new Error(`${method.name}: only server streaming is supported`);
      let request: MessageInitShape<I> | undefined;
      for await (const message of input) request = message;
      const metadata = new grpc.Metadata();
      new Headers(header).forEach((value, key) => metadata.add(key, value));
      const call = client.makeServerStreamRequest(
        `/${method.parent.typeName}/${method.name}`,
        (message: MessageInitShape<I>) => Buffer.from(toBinary(method.input, create(method.input, message))),
        (bytes: Buffer) => fromBinary(method.output, bytes),
        request ?? ({} as MessageInitShape<I>),
        metadata,
        timeoutMs ? { deadline: Date.now() + timeoutMs } : {},
      );
      signal?.addEventListener("abort", () => call.cancel());
      // grpc-js reports a status other than OK as an 'error' event, which may come before the
      // iteration below starts (and the iteration then just ends): kept and thrown at the end.
      let failure: grpc.ServiceError | undefined;
      call.on("error", (err: grpc.ServiceError) => (failure ??= err));
      const connectError = (e: grpc.ServiceError) => {
        const trailer = metadataToHeaders(e.metadata ?? new grpc.Metadata());
        return findTrailerError(trailer) ?? new ConnectError(e.details, e.code as number as Code, trailer);
      };
      const responseHeader = await new Promise<Headers>((resolve) => {
        call.once("metadata", (md: grpc.Metadata) => resolve(metadataToHeaders(md)));
        call.once("error", () => resolve(new Headers()));
        call.once("end", () => resolve(new Headers()));
      });
      async function* messages(): AsyncGenerator<MessageShape<O>> {
        try {
          for await (const message of call as AsyncIterable<MessageShape<O>>) yield message;
        } catch (err) {
          throw connectError(err as grpc.ServiceError);
        } finally {
          call.cancel();
        }
        if (failure) throw connectError(failure);
      }
      return { stream: true, service: method.parent, method, header: responseHeader, message: messages(), trailer: new Headers() };
    },
  };
}

export type TransportName = "grpc" | "connect" | "grpc-web";
export const transportNames: TransportName[] = ["grpc", "connect", "grpc-web"];

export interface Clients {
  readonly name: TransportName;
  readonly transport: Transport;
  client<S extends DescService>(service: S): Client<S>;
  close(): void;
}

/** Where a service listens: a TestService, or a service process (process.ts). */
export type ServiceAddress = Pick<TestService, "grpcAddress" | "httpUrl">;

/** What a client trusts and presents on a TLS service (test/support/certificates.ts). */
export interface ClientTls {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export function clientsFor(service: ServiceAddress, name: TransportName, tls?: ClientTls): Clients {
  let transport: Transport;
  let close = () => {};
  if (name === "grpc") {
    const credentials = tls ? grpc.credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null) : undefined;
    const grpcTransport = createGrpcJsTransport(service.grpcAddress, credentials);
    transport = grpcTransport;
    close = () => grpcTransport.close();
  } else if (name === "connect") {
    transport = createConnectTransport({ baseUrl: service.httpUrl, httpVersion: "1.1", nodeOptions: tls && { ca: tls.ca } });
  } else {
    transport = createGrpcWebTransport({ baseUrl: service.httpUrl, httpVersion: "1.1", nodeOptions: tls && { ca: tls.ca } });
  }
  return { name, transport, client: (s) => createClient(s, transport), close };
}
