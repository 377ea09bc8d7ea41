// The transport's own limit: a bare @grpc/grpc-js unary server that answers every call with
// fixed bytes (ECHO_RESPONSE_HEX) at ECHO_PATH, no protobuf decoding and no handler context.
// Run as its own process by the bench; prints {"echoPort": n} once listening, stops on SIGTERM.
// With ECHO_TLS_CERT_FILE and ECHO_TLS_KEY_FILE it serves TLS (the baseline of VerifyToken over TLS).
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";

const path = process.env.ECHO_PATH ?? "/bench.v1.EchoService/Echo";
const response = Buffer.from(process.env.ECHO_RESPONSE_HEX ?? "", "hex");
const identity = (bytes: Buffer) => bytes;

const server = new grpc.Server();
server.addService(
  { echo: { path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
  { echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, response) },
);
const { ECHO_TLS_CERT_FILE: certFile, ECHO_TLS_KEY_FILE: keyFile } = process.env;
const credentials = certFile && keyFile
  ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(certFile), private_key: readFileSync(keyFile) }], false)
  : grpc.ServerCredentials.createInsecure();
server.bindAsync("127.0.0.1:0", credentials, (err, port) => {
  if (err) throw err;
  console.log(JSON.stringify({ echoPort: port }));
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
