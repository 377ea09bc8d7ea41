// PostgreSQL goes away under load and comes back: calls that need it answer UNAVAILABLE (never
// INTERNAL), VerifyToken keeps answering from memory, grpc.health.v1 reports the services that
// answer from memory SERVING and the others NOT_SERVING, /readyz names which, the process
// survives, recovers by itself, and every call that succeeded is in the database afterwards.
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import pg from "pg";
import { expect, it } from "vitest";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { Authorization } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { createGrpcJsTransport } from "../support/transports.js";
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

function healthStatus(address: string, service = ""): Promise<string> {
  const definition = protoLoader.loadSync(path.resolve("node_modules/grpc-health-check/proto/health/v1/health.proto"), { keepCase: true, enums: String });
  const Health = (grpc.loadPackageDefinition(definition) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1.Health;
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  return new Promise((resolve, reject) =>
    client.Check({ service }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res!.status);
    }),
  );
}

/** grpc.health.v1 Check for the overall status and every mounted service. */
async function healthStatuses(): Promise<Record<string, string>> {
  const names = ["", "identity.v1.AuthService", "identity.v1.TokenService", "identity.v1.OtpService", "identity.v1.MfaService", "identity.v1.AdminService", "identity.v1.PasskeyService", "identity.v1.FederationService", "envoy.service.auth.v3.Authorization"];
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, await healthStatus(t.grpcAddress, name)] as const)));
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
  const signedUp = await auth.signUp({ username: "outage-user", password: "a long enough passphrase" });
  const access = signedUp.tokens!.accessToken;
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
  // ...and health follows per service: what needs the database is NOT_SERVING, what answers from
  // memory stays SERVING, and so does the overall status; liveness does not move.
  expect(await waitFor(async () => (await healthStatus(t.grpcAddress, "identity.v1.AuthService")) === "NOT_SERVING", 10_000)).toBe(true);
  const during = await healthStatuses();
  expect(during).toEqual({
    "": "SERVING",
    "identity.v1.AuthService": "NOT_SERVING",
    "identity.v1.TokenService": "SERVING",
    "identity.v1.OtpService": "NOT_SERVING",
    "identity.v1.MfaService": "NOT_SERVING",
    "identity.v1.AdminService": "NOT_SERVING",
    "identity.v1.PasskeyService": "NOT_SERVING",
    "identity.v1.FederationService": "NOT_SERVING",
    "envoy.service.auth.v3.Authorization": "SERVING",
  });
  // What health calls SERVING answers: VerifyToken and GetJwks still do; TokenService's methods
  // that need the database answer UNAVAILABLE (health is per service, not per method).
  expect((await tokens.verifyToken({ token: access }, { headers: { "x-service-key": TEST_SERVICE_KEY } })).active).toBe(true);
  expect((await tokens.getJwks({})).keys.length).toBeGreaterThan(0);
  const transport = createGrpcJsTransport(t.grpcAddress);
  try {
    const envoy = createClient(Authorization, transport);
    const check = await envoy.check({ attributes: { request: { http: { headers: { authorization: `Bearer ${access}` } } } } }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    expect(check.status?.code, check.status?.message).toBe(0);
  } finally {
    transport.close();
  }
  const refresh = await tokens.refreshToken({ refreshToken: signedUp.tokens!.refreshToken }).then(() => undefined, (err: unknown) => ConnectError.from(err));
  expect(refresh?.code).toBe(Code.Unavailable);
  const readyz = await fetch(`${t.httpUrl}/readyz`);
  expect(readyz.status).toBe(503);
  expect(await readyz.json()).toEqual({
    status: "not ready",
    database: "unreachable",
    overall: "SERVING",
    services: {
      "identity.v1.AuthService": "NOT_SERVING",
      "identity.v1.TokenService": "SERVING",
      "identity.v1.OtpService": "NOT_SERVING",
      "identity.v1.MfaService": "NOT_SERVING",
      "identity.v1.AdminService": "NOT_SERVING",
      "identity.v1.PasskeyService": "NOT_SERVING",
      "identity.v1.FederationService": "NOT_SERVING",
      "envoy.service.auth.v3.Authorization": "SERVING",
    },
    revocationAgeMs: expect.any(Number),
  });
  expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
  await new Promise((r) => setTimeout(r, 500));

  postgres().running = await postgres().start();
  expect(await waitFor(async () => (await healthStatus(t.grpcAddress, "identity.v1.AuthService")) === "SERVING", 15_000)).toBe(true);
  expect(Object.values(await healthStatuses())).toEqual(Array(9).fill("SERVING"));
  expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
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
