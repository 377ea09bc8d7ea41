// The two calls the client makes to the identity service, over @grpc/grpc-js on its gRPC port
// with the generated messages (no generated grpc-js stubs: the paths and codecs come from gen/).
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  TokenService,
  VerifyTokenRequestSchema,
  VerifyTokenResponseSchema,
  WatchRevocationsRequestSchema,
  WatchRevocationsResponseSchema,
  type VerifyTokenResponse,
  type WatchRevocationsResponse,
} from "../../gen/identity/v1/token_service_pb.js";

/** TLS to the identity service: the CA to trust, and a client certificate when it authenticates the caller. */
export interface ClientTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface Connection {
  verifyToken(token: string, audience: string, timeoutMs: number): Promise<VerifyTokenResponse>;
  /** Opens WatchRevocations; returns a function that cancels it. */
  watch(cursor: string, heartbeatSec: number, on: { message(m: WatchRevocationsResponse): void; end(error?: Error): void }): () => void;
  close(): void;
}

const path = (name: string) => `/${TokenService.typeName}/${name}`;
const encoder = <D extends DescMessage>(schema: D) => (m: MessageInitShape<D>) => Buffer.from(toBinary(schema, create(schema, m)));
const decoder = <D extends DescMessage>(schema: D) => (bytes: Buffer): MessageShape<D> => fromBinary(schema, bytes);

export function connect(address: string, serviceKey: string | undefined, tls: ClientTls | undefined): Connection {
  const credentials = tls ? grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null) : grpc.credentials.createInsecure();
  const client = new grpc.Client(address, credentials);
  const metadata = () => {
    const md = new grpc.Metadata();
    if (serviceKey) md.set("x-service-key", serviceKey);
    return md;
  };
  return {
    verifyToken(token, audience, timeoutMs) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          path("VerifyToken"), encoder(VerifyTokenRequestSchema), decoder(VerifyTokenResponseSchema),
          { token, audience }, metadata(), { deadline: Date.now() + timeoutMs },
          (error, response) => (error || !response ? reject(error ?? new Error("no response")) : resolve(response)),
        );
      });
    },
    watch(cursor, heartbeatSec, on) {
      const call = client.makeServerStreamRequest(
        path("WatchRevocations"), encoder(WatchRevocationsRequestSchema), decoder(WatchRevocationsResponseSchema),
        { cursor, heartbeatInterval: { seconds: BigInt(heartbeatSec) } }, metadata(), {},
      );
      let ended = false;
      const end = (error?: Error) => {
        if (ended) return;
        ended = true;
        on.end(error);
      };
      call.on("data", (m: WatchRevocationsResponse) => {
        if (!ended) on.message(m);
      });
      call.on("error", (error: Error) => end(error));
      call.on("status", (status: grpc.StatusObject) => end(status.code === grpc.status.OK ? undefined : new Error(status.details)));
      call.on("end", () => end());
      return () => {
        end(new Error("cancelled"));
        call.cancel();
      };
    },
    close: () => client.close(),
  };
}
