// What a run measures against: embedded PostgreSQL in a temporary directory, the identity
// service built and started as `npm start` runs it, accounts to log in with, and the bare echo
// server answering with the bytes of a real VerifyToken response. Everything registers its
// own cleanup (cleanup.ts).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { buildSync } from "esbuild";
import { loadConfig, type Config } from "../../src/config.js";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { onCleanup, onExitSync } from "./cleanup.js";
import { BENCH_SERVICE_KEY, checkedVerify, connect, login, signUpAccount, type ServiceClients } from "./clients.js";
import { extraServiceEnv } from "./machine.js";
import { rssStep } from "./procfs.js";
import { ACCOUNTS, ECHO_PATH } from "./scenarios.js";
import { freePort, spawnNode, type NodeProcess } from "./service-process.js";

export interface Environment {
  readonly workDir: string;
  readonly databaseUrl: string;
  readonly serviceEnv: Record<string, string>;
  readonly config: Config;
  readonly service: NodeProcess;
  readonly serviceGrpc: string;
  readonly serviceHttp: string;
  readonly echo: NodeProcess;
  readonly echoGrpc: string;
  readonly clients: ServiceClients;
  readonly emails: readonly string[];
  /** The service's peak RSS when ready and after the sign-ups, for the RSS line. */
  readonly rssSteps: string[];
  /** The service's Prometheus endpoint (its heap figures). */
  readonly serviceMetrics: string;
  startTls(): Promise<TlsPair>;
  /** A key of the service account `bench-verifier` (tokens.verify), made with the CLI. */
  readonly namedKey: string;
}

/** `profileDir`: also write CPU profiles of the service and the echo there. */
export async function startEnvironment(profileDir: string | undefined): Promise<Environment> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), "identity-bench-"));
  chmodSync(workDir, 0o755); // embedded PostgreSQL runs as a user of its own beneath it
  const removeWorkDir = () => rmSync(workDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  onCleanup("remove work directory", removeWorkDir);
  onExitSync(removeWorkDir);

  console.log("bench: starting embedded PostgreSQL");
  const database = await startEmbeddedPostgres({ dir: path.join(workDir, "pg"), port: await freePort(), password: randomBytes(12).toString("hex"), persistent: false });
  // stop() waits for an exit that already happened when Ctrl-C reached PostgreSQL too.
  onCleanup("stop PostgreSQL", () => Promise.race([database.stop(), new Promise<void>((r) => setTimeout(r, 5_000))]));

  const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const serviceEnv: Record<string, string> = {
    NODE_ENV: "production",
    DATABASE_URL: database.url,
    DATA_DIR: path.join(workDir, "data"),
    KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    SERVICE_KEYS: `bench:${BENCH_SERVICE_KEY}`,
    CORS_ORIGINS: "http://127.0.0.1",
    PUBLIC_URL: "http://127.0.0.1",
    TOKEN_ISSUER: "http://localhost:8080",
    METRICS_PORT: String(metricsPort),
    BIND_HOST: "127.0.0.1",
    GRPC_PORT: String(grpcPort),
    HTTP_PORT: String(httpPort),
    // No LOG_LEVEL (nor ACCESS_LOG_SAMPLE_RATE): the service logs as a fresh `npm start` and the
    // production image do, at info. BENCH_SERVICE_ENV may set them to try another level.
    ...extraServiceEnv(),
  };
  const config = loadConfig(serviceEnv); // the same parameters the service will run with
  const profiled = (name: string) => (profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.join(profileDir, name)}`] : []);

  console.log("bench: building the service (npm run build) and starting it");
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
  const serviceHttp = `http://127.0.0.1:${httpPort}`;
  const service = await spawnNode({
    name: "identity service",
    args: [...profiled("service"), "--enable-source-maps", "dist/src/main.js"],
    env: serviceEnv,
    ready: () => false,
    probe: async () => (await fetch(`${serviceHttp}/readyz`)).ok,
  });
  const rssSteps = [`${rssStep(service.child.pid!)} when ready`];

  // A service account with a key, made as an operator would (the CLI, against the same database):
  // what a backend calls VerifyToken with in production, beside the SERVICE_KEYS bootstrap key.
  const cli = (...args: string[]) => execFileSync(process.execPath, ["dist/src/service-accounts.js", ...args], { env: { PATH: process.env.PATH ?? "", ...serviceEnv }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  cli("create", "bench-verifier", "--permissions", "tokens.verify", "--description", "the bench's VerifyToken caller");
  const namedKey = cli("add-key", "bench-verifier").trim();
  if (!/^isk_\S+$/.test(namedKey)) throw new Error("service-accounts add-key printed no key");

  const serviceGrpc = `127.0.0.1:${grpcPort}`;
  const clients = connect(serviceGrpc);
  onCleanup("close clients", () => clients.close());
  const emails = await Promise.all(Array.from({ length: ACCOUNTS }, () => signUpAccount(clients)));
  const { accessToken } = await login(clients, emails[0]!);
  const verifyResponse = await checkedVerify(clients, accessToken, true);
  rssSteps.push(`${rssStep(service.child.pid!)} after ${ACCOUNTS} sign-ups`);

  // Built like the service, so both run as plain node on compiled JavaScript.
  buildSync({ entryPoints: ["test/bench/echo-server.ts"], outdir: "dist", outbase: ".", format: "esm", platform: "node", target: "node20", logLevel: "warning" });
  const echoResponseHex = Buffer.from(verifyResponse).toString("hex");
  const { process: echo, address: echoGrpc } = await startEcho("echo server", { ECHO_RESPONSE_HEX: echoResponseHex }, profiled("echo"));

  let tls: Promise<TlsPair> | undefined;
  const startTls = () =>
    (tls ??= (async () => {
      // Another instance of the same service on the same database, with TLS_CERT_FILE/TLS_KEY_FILE,
      // and the echo with the same certificate: the TLS line's figure and its baseline.
      const { certFile, keyFile } = benchCertificate(workDir);
      const [tlsGrpcPort, tlsHttpPort] = [await freePort(), await freePort()];
      const tlsService = await spawnNode({
        name: "identity service (TLS)",
        args: ["--enable-source-maps", "dist/src/main.js"],
        env: { ...serviceEnv, GRPC_PORT: String(tlsGrpcPort), HTTP_PORT: String(tlsHttpPort), METRICS_PORT: "0", TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile },
        ready: () => false,
        probe: () => httpsOk(`https://127.0.0.1:${tlsHttpPort}/readyz`),
      });
      const tlsEcho = await startEcho("echo server (TLS)", { ECHO_RESPONSE_HEX: echoResponseHex, ECHO_TLS_CERT_FILE: certFile, ECHO_TLS_KEY_FILE: keyFile }, []);
      return { serviceGrpc: `127.0.0.1:${tlsGrpcPort}`, servicePid: tlsService.child.pid!, echoGrpc: tlsEcho.address, echoPid: tlsEcho.process.child.pid!, certFile };
    })());
  const serviceMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
  return { workDir, databaseUrl: database.url, serviceEnv, config, service, serviceGrpc, serviceHttp, serviceMetrics, echo, echoGrpc, clients, emails, rssSteps, startTls, namedKey };
}

/** The TLS instance and its echo baseline, started on first use (the transport group). */
export interface TlsPair {
  readonly serviceGrpc: string;
  readonly servicePid: number;
  readonly echoGrpc: string;
  readonly echoPid: number;
  /** The self-signed certificate both present (a client's root to trust them). */
  readonly certFile: string;
}

async function startEcho(name: string, env: Record<string, string>, extraArgs: readonly string[]): Promise<{ process: NodeProcess; address: string }> {
  let port = 0;
  const echo = await spawnNode({
    name,
    args: [...extraArgs, "dist/test/bench/echo-server.js"],
    env: { ECHO_PATH, ...env },
    ready: (line) => (port = (JSON.parse(line.startsWith("{") ? line : "{}") as { echoPort?: number }).echoPort ?? 0) > 0,
  });
  return { process: echo, address: `127.0.0.1:${port}` };
}

/** A self-signed P-256 certificate for 127.0.0.1 (openssl, as the TLS tests make theirs); h2load does not verify it. */
function benchCertificate(workDir: string): { certFile: string; keyFile: string } {
  const certFile = path.join(workDir, "bench-cert.pem");
  const keyFile = path.join(workDir, "bench-key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { certFile, keyFile };
}

function httpsOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
  });
}
