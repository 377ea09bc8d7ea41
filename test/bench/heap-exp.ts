import { create, toBinary } from "@bufbuild/protobuf";
import { readdirSync } from "node:fs";
import { VerifyTokenRequestSchema, TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { runCleanups } from "./cleanup.js";
import { BENCH_SERVICE_KEY, checkedVerify, login } from "./clients.js";
import { startEnvironment } from "./environment.js";
import { grpcFrame, h2load } from "./h2load.js";

const env = await startEnvironment(undefined);
const { accessToken } = await login(env.clients, env.emails[0]!);
const validBytes = (await checkedVerify(env.clients, accessToken, true)).length + 5;
const body = grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token: accessToken })));
const load = (durationSec: number) => h2load({ url: `http://${env.serviceGrpc}/${TokenService.typeName}/VerifyToken`, body, headers: { "content-type": "application/grpc", te: "trailers", "x-service-key": BENCH_SERVICE_KEY }, clients: 8, streams: 32, durationSec, expectedBodyBytes: validBytes, workDir: env.workDir });
const snap = async () => {
  const before = readdirSync(".").filter((f) => f.endsWith(".heapsnapshot")).length;
  process.kill(env.service.child.pid!, "SIGUSR2");
  while (readdirSync(".").filter((f) => f.endsWith(".heapsnapshot")).length === before) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 3000));
};
await load(10);
await snap();
console.log("snap 1");
const r = await load(40);
console.log("rate", r.requestsPerSec);
await snap();
console.log("snap 2");
await runCleanups();
process.exit(0);
