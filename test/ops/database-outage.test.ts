// PostgreSQL goes away under load and comes back: calls that need it answer UNAVAILABLE (never
// INTERNAL), VerifyToken keeps answering from memory, health reports NOT_SERVING, the process
// survives, recovers by itself, and every call that succeeded is in the database afterwards.
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import pg from "pg";
import { expect, it } from "vitest";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { accountWithKey } from "../support/service-accounts.js";
import { freePort } from "../support/ports.js";
import { prepared, setupService } from "../support/setup.js";

const dir = path.resolve(".test-data", `outage-${process.pid}`);

/** This file's own PostgreSQL, which the test stops and starts again on the same port and data. */
const postgres = prepared(
  async () => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(path.dirname(dir), { recursive: true });
    const port = await freePort();
    const start = () => startEmbeddedPostgres({ dir, port, password: "outage", persistent: true });
    return { start, running: (await start()) as EmbeddedDatabase | undefined };
  },
  async ({ running }) => {
    await running?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  },
);
const t = setupService(() => ({ database: { url: postgres().running!.url, drop: async () => {} } }));

function healthStatus(address: string): Promise<string> {
  const definition = protoLoader.loadSync(path.resolve("node_modules/grpc-health-check/proto/health/v1/health.proto"), { keepCase: true, enums: String });
  const Health = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1.Health;
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  return new Promise((resolve, reject) =>
    client.Check({ service: "" }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

it("answers UNAVAILABLE while the database is down, keeps verifying tokens, and recovers", async () => {
  const { auth, tokens } = t.clients("grpc");
  const access = (await auth.signUp({ username: "outage-user", password: "a long enough passphrase" })).tokens!.accessToken;
  // A named key used once before the outage (resolved and cached) and one never used (resolved
  // from the directory in memory during the outage).
  const used = await accountWithKey(t, "outage-billing", ["tokens.verify"]);
  const unused = (await t.app.serviceAccounts.addKey("outage-billing")).key;
  await tokens.verifyToken({ token: access }, { headers: { "x-service-key": used.key } });

  const succeeded: string[] = [];
  const codes = new Map<string, number>();
  let running = true;
  let n = 0;
  const load = async () => {
    while (running) {
      const username = `load-${++n}`;
      try {
        await auth.signUp({ username, password: "a long enough passphrase" }, { timeoutMs: 5_000 });
        succeeded.push(username);
        codes.set("OK", (codes.get("OK") ?? 0) + 1);
      } catch (err) {
        const code = Code[ConnectError.from(err).code];
        codes.set(code, (codes.get(code) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const workers = [load(), load(), load()];
  await new Promise((r) => setTimeout(r, 500));

  await postgres().running!.stop();
  // Calls that need the database fail fast with UNAVAILABLE...
  const down = await auth.login({ identifier: "outage-user", password: "a long enough passphrase" }).then(() => undefined, (err: unknown) => ConnectError.from(err));
  expect(down?.code).toBe(Code.Unavailable);
  // ...VerifyToken answers from memory...
  expect((await tokens.verifyToken({ token: access }, { headers: { "x-service-key": TEST_SERVICE_KEY } })).active).toBe(true);
  // ...for named service accounts too: their directory is in memory, and a failed reload keeps it.
  expect((await tokens.verifyToken({ token: access }, { headers: { "x-service-key": used.key } })).active).toBe(true);
  expect((await tokens.verifyToken({ token: access }, { headers: { authorization: `Bearer ${unused}` } })).active).toBe(true);
  // ...and readiness follows, liveness does not.
  expect(await waitFor(async () => (await healthStatus(t.grpcAddress)) === "NOT_SERVING", 10_000)).toBe(true);
  expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(503);
  expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
  await new Promise((r) => setTimeout(r, 500));

  postgres().running = await postgres().start();
  expect(await waitFor(async () => (await healthStatus(t.grpcAddress)) === "SERVING", 15_000)).toBe(true);
  expect(await waitFor(async () => {
    await auth.login({ identifier: "outage-user", password: "a long enough passphrase" });
    return true;
  }, 15_000)).toBe(true);
  await new Promise((r) => setTimeout(r, 500));
  running = false;
  await Promise.all(workers);

  const internal = t.logLines.filter((l) => l.includes('"status":"Internal"'));
  expect(codes.get("Internal") ?? 0, internal.join("\n")).toBe(0);
  expect(codes.get("Unavailable") ?? 0).toBeGreaterThan(0);
  expect(codes.get("OK") ?? 0).toBeGreaterThan(0);
  // No call that answered OK was lost.
  const client = new pg.Client({ connectionString: postgres().running!.url });
  await client.connect();
  const rows = await client.query<{ username: string }>(`SELECT username FROM users WHERE username = ANY($1)`, [succeeded]);
  await client.end();
  expect(rows.rowCount).toBe(succeeded.length);
}, 90_000);
