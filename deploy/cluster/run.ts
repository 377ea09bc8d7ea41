// `npm run cluster`: the set-up test/ops/cluster.test.ts tests, for a person to try. Three
// instances of the built service (dist/src/main.js, as `npm start` runs it) on one PostgreSQL
// behind nginx (Debian package `nginx`): gRPC on 127.0.0.1:50051, the gateway and browser app on
// http://127.0.0.1:8080, the ports a single `npm start` uses, so README's grpcurl walk-through
// works against it. Type `kill 2` to SIGKILL an instance, `start 2` to start it again on its
// ports (nginx sends it calls again), `status`, or `quit`; Ctrl-C stops everything.
//
//   npm run cluster                    # a fresh embedded PostgreSQL in a temp dir, removed at the end
//   npm run cluster -- --instances 5 --grpc-port 50061 --http-port 8081 --logs
//   DATABASE_URL=postgres://... KEY_ENCRYPTION_KEY=... npm run cluster
//
// The first instance starts alone (it migrates the database), the others after it.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { NGINX, startNginx } from "../../test/support/nginx.js";
import { freePort } from "../../test/support/ports.js";
import { clusterNginxHttp } from "./nginx-config.js";

const { values: args } = parseArgs({
  options: {
    instances: { type: "string", default: "3" },
    "grpc-port": { type: "string", default: "50051" },
    "http-port": { type: "string", default: "8080" },
    logs: { type: "boolean", default: false },
  },
});
const count = Number(args.instances);
if (!Number.isInteger(count) || count < 1 || count > 16) throw new Error("--instances must be 1 to 16");
if (!existsSync("dist/src/main.js")) throw new Error("dist/src/main.js is missing: run `npm run build` (npm run cluster does)");
if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: sudo apt-get install -y nginx`);

interface Instance {
  readonly number: number;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly metricsPort: number;
  child?: ChildProcess;
}

const cleanup: Array<() => Promise<void>> = [];
let databaseUrl = process.env.DATABASE_URL;
let kek = process.env.KEY_ENCRYPTION_KEY;
if (databaseUrl) {
  if (!kek) throw new Error("with DATABASE_URL, set KEY_ENCRYPTION_KEY too (the key that database's signing keys are sealed with)");
} else {
  const dir = mkdtempSync(path.join(tmpdir(), "identity-cluster-pg-"));
  console.log("starting an embedded PostgreSQL (DATABASE_URL is unset) ...");
  const embedded = await startEmbeddedPostgres({ dir, port: await freePort(), password: randomBytes(12).toString("hex"), persistent: false });
  databaseUrl = embedded.url;
  kek = randomBytes(32).toString("base64");
  cleanup.unshift(async () => {
    await embedded.stop();
    rmSync(dir, { recursive: true, force: true });
  });
}
const serviceKey = randomBytes(24).toString("base64url");
const serviceKeys = process.env.SERVICE_KEYS ?? `cluster:${serviceKey}`;

const instances: Instance[] = [];
for (let number = 1; number <= count; number++) instances.push({ number, grpcPort: await freePort(), httpPort: await freePort(), metricsPort: await freePort() });

/** Starts an instance on its ports; resolves when it listens. */
function start(instance: Instance): Promise<void> {
  const child = spawn(process.execPath, ["--enable-source-maps", "dist/src/main.js"], {
    env: {
      ...process.env,
      MALLOC_ARENA_MAX: "2",
      DATABASE_URL: databaseUrl,
      KEY_ENCRYPTION_KEY: kek,
      SERVICE_KEYS: serviceKeys,
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: String(instance.grpcPort),
      HTTP_PORT: String(instance.httpPort),
      METRICS_PORT: String(instance.metricsPort),
      // nginx forwards the client's address.
      TRUSTED_PROXIES: process.env.TRUSTED_PROXIES ?? "loopback",
      // Short enough to see a client move onto a restarted instance through an L4 balancer.
      GRPC_MAX_CONNECTION_AGE_MS: process.env.GRPC_MAX_CONNECTION_AGE_MS ?? "0",
      HASH_CONCURRENCY: process.env.HASH_CONCURRENCY ?? "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  instance.child = child;
  const prefix = `[${instance.number}]`;
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(`${prefix} ${chunk.toString()}`));
  return new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes('"identity service listening"')) resolve();
      // Warnings and errors (pino levels 40 and up), every line with --logs.
      if (args.logs || /"level":(4|5|6)\d/.test(line)) console.log(`${prefix} ${line}`);
    });
    child.once("exit", (code, signal) => {
      console.log(`${prefix} exited (${signal ?? code})`);
      reject(new Error(`instance ${instance.number} exited (${signal ?? code}) before listening`));
    });
  });
}

function stopInstance(instance: Instance): Promise<void> {
  const child = instance.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
cleanup.unshift(async () => void (await Promise.all(instances.map(stopInstance))));

let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("stopping ...");
    for (const step of cleanup) await step().catch((err: unknown) => console.error(err));
  }
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  console.log(`starting instance 1 (it migrates the database), then ${count - 1} more ...`);
  await start(instances[0]!);
  await Promise.all(instances.slice(1).map(start));
  const grpcPort = Number(args["grpc-port"]);
  const httpPort = Number(args["http-port"]);
  const nginx = await startNginx(
    () =>
      clusterNginxHttp({
        grpcListen: `127.0.0.1:${grpcPort}`,
        httpListen: `127.0.0.1:${httpPort}`,
        grpcBackends: instances.map((instance) => `127.0.0.1:${instance.grpcPort}`),
        httpBackends: instances.map((instance) => `127.0.0.1:${instance.httpPort}`),
      }),
    { port: httpPort },
  );
  cleanup.unshift(() => nginx.stop());
  console.log(`
nginx in front of ${count} instances on one PostgreSQL:
  gRPC (grpc_pass, h2c)        127.0.0.1:${grpcPort}
  gateway and browser app      http://127.0.0.1:${httpPort}
instances (direct):
${instances.map((i) => `  [${i.number}] gRPC 127.0.0.1:${i.grpcPort}  gateway http://127.0.0.1:${i.httpPort}  metrics http://127.0.0.1:${i.metricsPort}/metrics`).join("\n")}
service key: ${process.env.SERVICE_KEYS ? "(from SERVICE_KEYS)" : serviceKey}
database:    ${databaseUrl.replace(/:[^:@/]+@/, ":***@")}

try:
  grpcurl -plaintext -H "x-service-key: ${process.env.SERVICE_KEYS ? "<key>" : serviceKey}" -d '{"token":"..."}' 127.0.0.1:${grpcPort} identity.v1.TokenService/VerifyToken
commands: kill <n> (SIGKILL), start <n>, status, quit; Ctrl-C stops everything
`);
  createInterface({ input: process.stdin }).on("line", (line) => {
    const [command, arg] = line.trim().split(/\s+/);
    const instance = instances.find((i) => String(i.number) === arg);
    const alive = (i: Instance) => i.child !== undefined && i.child.exitCode === null && i.child.signalCode === null;
    if (command === "quit" || command === "exit") void shutdown(0);
    else if (command === "status") for (const i of instances) console.log(`[${i.number}] ${alive(i) ? `running (pid ${i.child!.pid})` : "stopped"}`);
    else if (command === "kill" && instance && alive(instance)) instance.child!.kill("SIGKILL");
    else if (command === "start" && instance && !alive(instance)) start(instance).then(() => console.log(`[${instance.number}] listening`), (err: unknown) => console.error(String(err)));
    else if (command) console.log("commands: kill <n>, start <n>, status, quit");
  });
} catch (err) {
  console.error(`cluster failed to start: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown(1);
}
