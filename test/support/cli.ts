// The operator commands as an operator runs them: the built script (dist/, as its npm script
// runs it) in a process of its own, against a test database, with the test service's key
// material. Resolves with the exit code and both outputs; never rejects.
import { execFile } from "node:child_process";
import { TEST_KEK, TEST_SERVICE_KEYS } from "./service.js";

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `dist/src/<script>` with `args` against the database at `databaseUrl` (`env` overrides the defaults). */
export function runBuiltCli(script: string, databaseUrl: string, args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [`dist/src/${script}`, ...args],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          NODE_ENV: "test",
          DATABASE_URL: databaseUrl,
          KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"),
          SERVICE_KEYS: TEST_SERVICE_KEYS,
          ...env,
        },
        timeout: 20_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
