// The sample backend as a separate OS process (sample-backend-main.ts, run by node with the tsx
// loader), for tests that use each middleware the way a real backend does: in its own process,
// importing grpc-identity/client by package name (the build the global setup makes). It returns
// the addresses backendCaller needs, like startSampleBackends, and stop() that sends SIGTERM and
// resolves with the exit code.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { SampleBackends } from "./sample-backend.js";

export interface SampleProcessOptions {
  readonly address: string;
  readonly serviceKey: string;
  readonly mode: "local" | "remote";
  readonly issuer?: string;
  readonly audience?: string;
}

export interface SampleProcess extends SampleBackends {
  readonly child: ChildProcess;
  readonly mode: "local" | "remote";
  /** Where `grpc-identity/client` resolved in the child. */
  readonly library: string;
  /** Sends SIGTERM and resolves with the exit code (null: killed by a signal). */
  stop(): Promise<number | null>;
}

const root = new URL("../..", import.meta.url).pathname;

export async function spawnSampleBackend(options: SampleProcessOptions): Promise<SampleProcess> {
  const child = spawn(process.execPath, ["--enable-source-maps", "--import", "tsx", "test/client/sample-backend-main.ts"], {
    cwd: root,
    env: {
      // Not the test worker's NODE_OPTIONS or VITEST_* variables: the child is a plain backend.
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      IDENTITY_ADDRESS: options.address,
      IDENTITY_SERVICE_KEY: options.serviceKey,
      IDENTITY_MODE: options.mode,
      ...(options.issuer !== undefined ? { IDENTITY_ISSUER: options.issuer } : {}),
      ...(options.audience !== undefined ? { IDENTITY_AUDIENCE: options.audience } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const started = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sample backend did not start: ${stderr.join("")}`));
    }, 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.includes('"sampleBackend":"listening"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as Record<string, string>);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sample backend exited with ${code}: ${stderr.join("")}`));
    });
  });
  const stop = (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    return exited;
  };
  return {
    child,
    mode: options.mode,
    library: started.library!,
    grpcAddress: started.grpcAddress!,
    connectUrl: started.connectUrl!,
    expressUrl: started.expressUrl!,
    fastifyUrl: started.fastifyUrl!,
    stop,
    close: async () => {
      await stop();
    },
  };
}
