// The service as a separate OS process (the built dist/src/main.js, as `npm start` runs it) on
// a given database, for tests about several instances sharing one PostgreSQL. The global
// setup builds dist/ once per run.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { TEST_KEK, TEST_SERVICE_KEYS } from "./service.js";

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  readonly metricsUrl: string;
  /** Log lines printed so far (JSON strings). */
  readonly logLines: string[];
  stop(): Promise<number | null>;
}

export async function spawnServiceProcess(databaseUrl: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--enable-source-maps", "dist/src/main.js"], {
    env: {
      // Not the test worker's NODE_OPTIONS or VITEST_* variables: the child is a plain service.
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: "test",
      DATABASE_URL: databaseUrl,
      TOKEN_ISSUER: "http://localhost:8080",
      KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"),
      SERVICE_KEYS: TEST_SERVICE_KEYS,
      BIND_HOST: "127.0.0.1",
      GRPC_PORT: "0",
      HTTP_PORT: "0",
      METRICS_PORT: "0",
      LOG_LEVEL: "info",
      // Several processes on one database sign up dozens of accounts from 127.0.0.1.
      SIGNUP_MAX_PER_IP_PER_HOUR: "1000000",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logLines: string[] = [];
  const stderr: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const ports = await new Promise<{ grpcPort: number; httpPort: number; metricsPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service process did not start: ${stderr.join("")}`)), 30_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      logLines.push(line);
      if (line.includes('"identity service listening"')) {
        clearTimeout(timer);
        const parsed = JSON.parse(line) as { grpcPort: number; httpPort: number; metricsPort: number };
        resolve({ grpcPort: parsed.grpcPort, httpPort: parsed.httpPort, metricsPort: parsed.metricsPort });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`service process exited with ${code}: ${stderr.join("")}`));
    });
  });
  return {
    child,
    grpcAddress: `127.0.0.1:${ports.grpcPort}`,
    httpUrl: `http://127.0.0.1:${ports.httpPort}`,
    metricsUrl: `http://127.0.0.1:${ports.metricsPort}/metrics`,
    logLines,
    stop: () =>
      new Promise((resolve) => {
        // Already gone (a test may have killed it with a signal: exitCode stays null then).
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once("exit", (code) => resolve(code));
        child.kill("SIGTERM");
      }),
  };
}
