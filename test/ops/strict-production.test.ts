// Issue 18: NODE_ENV=production refuses to start without DATABASE_URL, TOKEN_ISSUER, PUBLIC_URL
// and a key-encryption key (and what it refused before), naming every error at once; the built
// entry point as a process, before it touches a database or a data directory.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), "identity-strict-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return run(process.execPath, ["dist/src/main.js"], { env: { PATH: process.env.PATH!, DATA_DIR: path.join(dir, "data"), ...env }, timeout: 20_000 })
    .then(() => ({ code: 0, stderr: "" }), (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }));
}

it("refuses a bare production start, listing every missing variable on a line of its own", async () => {
  const { code, stderr } = await start({ NODE_ENV: "production", GRPC_PORT: "not-a-port", LOG_LEVEL: "loud" });
  expect(code).toBe(78);
  const lines = stderr.trim().split("\n");
  for (const name of ["DATABASE_URL", "TOKEN_ISSUER", "PUBLIC_URL", "KEY_ENCRYPTION_KEY", "SERVICE_KEYS", "GRPC_PORT", "LOG_LEVEL"]) {
    expect(lines.filter((l) => l.startsWith("configuration error: ") && l.includes(name)), `${name} in\n${stderr}`).toHaveLength(1);
  }
  expect(lines.every((l) => l.startsWith("configuration error: "))).toBe(true);
  // Nothing was started or created: no embedded database, no generated development key.
  expect(existsSync(path.join(dir, "data"))).toBe(false);
});

it("reads the secrets from *_FILE, and names a secret set twice", async () => {
  const kekFile = path.join(dir, "kek");
  writeFileSync(kekFile, `${Buffer.alloc(32, 9).toString("base64")}\n`);
  const { code, stderr } = await start({
    NODE_ENV: "production",
    KEY_ENCRYPTION_KEY_FILE: kekFile,
    DATABASE_URL: "postgres://a@127.0.0.1:1/x",
    DATABASE_URL_FILE: kekFile,
    TOKEN_ISSUER: "https://id.example.com",
    PUBLIC_URL: "https://id.example.com",
  });
  expect(code).toBe(78);
  expect(stderr).toContain("configuration error: DATABASE_URL and DATABASE_URL_FILE are both set");
  expect(stderr).toContain("configuration error: SERVICE_KEYS is required");
  expect(stderr).not.toContain("KEY_ENCRYPTION_KEY");
  expect(stderr).not.toContain(Buffer.alloc(32, 9).toString("base64"));
});
