// The sample backend (sample-backend.ts: grpc-js, connect-node, Express and Fastify, each behind
// its middleware) as a process of its own, the way a backend runs beside the identity service.
// It imports the client library by package name, as an installed backend would
// (`grpc-identity/client`, the build `npm run build` makes under dist/client), and is configured
// only by the environment:
//   IDENTITY_ADDRESS      host:port of the identity service's gRPC port (required)
//   IDENTITY_SERVICE_KEY  a service key holding tokens.verify (required)
//   IDENTITY_MODE         local | remote (default local)
//   IDENTITY_ISSUER       the service's TOKEN_ISSUER (required in local mode)
//   IDENTITY_AUDIENCE     the audience tokens must name (optional)
// Once listening it prints one JSON line: {"sampleBackend":"listening", mode, library,
// grpcAddress, connectUrl, expressUrl, fastifyUrl}. On SIGTERM or SIGINT it closes the servers and the
// verifier and exits 0 by itself; if anything still holds the event loop 5 s later it exits 1.
// Run: node --import tsx test/client/sample-backend-main.ts (after npm run build).
import type { TokenVerifier } from "../../src/client/index.js";
import { startSampleBackends } from "./sample-backend.js";

// A specifier in a variable: tsc type-checks this file without dist/ being built; the type is
// the source's, which the package's declarations are generated from.
const PACKAGE = "grpc-identity/client";
const library = (await import(PACKAGE)) as typeof import("../../src/client/index.js");

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    console.error(`sample backend: ${name} is required`);
    process.exit(2);
  }
  return value;
}

const mode = process.env.IDENTITY_MODE ?? "local";
if (mode !== "local" && mode !== "remote") {
  console.error(`sample backend: IDENTITY_MODE must be local or remote, not ${JSON.stringify(mode)}`);
  process.exit(2);
}

const verifier: TokenVerifier = library.createTokenVerifier({
  address: required("IDENTITY_ADDRESS"),
  serviceKey: required("IDENTITY_SERVICE_KEY"),
  mode,
  issuer: mode === "local" ? required("IDENTITY_ISSUER") : process.env.IDENTITY_ISSUER,
  audience: process.env.IDENTITY_AUDIENCE || undefined,
});
// local: listen only once the first snapshot (keys and revocations) is in memory.
await verifier.ready(10_000);
const backends = await startSampleBackends(verifier, library);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  setTimeout(() => {
    console.error(`sample backend: still running 5 s after ${signal}`);
    process.exit(1);
  }, 5000).unref();
  await backends.close();
  verifier.close();
  // Nothing else holds the loop: the process ends with code 0 on its own.
}
process.once("SIGTERM", () => void stop("SIGTERM"));
process.once("SIGINT", () => void stop("SIGINT"));

console.log(
  JSON.stringify({
    sampleBackend: "listening",
    mode,
    // Where the package name resolved (dist/client/index.js), so a test can tell.
    library: import.meta.resolve(PACKAGE),
    grpcAddress: backends.grpcAddress,
    connectUrl: backends.connectUrl,
    expressUrl: backends.expressUrl,
    fastifyUrl: backends.fastifyUrl,
  }),
);
