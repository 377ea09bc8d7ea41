// Issue 18: replicas started together on an empty database. Migrations run under a PostgreSQL
// advisory lock (src/db/data-source.ts runMigrationsLocked): every process comes up, the schema
// is migrated once, none exits; the HMAC keys and the first signing key are created once too.
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { createDataSource, runMigrationsLocked } from "../../src/db/data-source.js";
import { migrations } from "../../src/db/migrations/index.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { spawnServiceProcess, type ServiceProcess } from "../support/process.js";

let database: TestDatabase | undefined;
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  await database?.drop();
});

it("three processes started at the same moment on an empty database all come up; the schema is migrated once", async () => {
  database = await createTestDatabase();
  const started = await Promise.allSettled([0, 1, 2].map(() => spawnServiceProcess(database!.url)));
  for (const result of started) if (result.status === "fulfilled") processes.push(result.value);
  expect(started.map((r) => (r.status === "rejected" ? String(r.reason) : "up"))).toEqual(["up", "up", "up"]);

  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const applied = await client.query<{ name: string; n: number }>(`SELECT name, count(*)::int AS n FROM migrations GROUP BY name ORDER BY name`);
    expect(applied.rows).toHaveLength(migrations.length);
    expect(applied.rows.every((r) => r.n === 1)).toBe(true);
    expect((await client.query(`SELECT purpose FROM hmac_keys ORDER BY purpose`)).rows.map((r: { purpose: string }) => r.purpose)).toEqual(["backup-codes", "otp-codes", "service-keys"]);
    expect((await client.query(`SELECT count(*)::int AS n FROM signing_keys`)).rows[0].n).toBe(1);
    // Each instance serves (and agrees on the keys: one JWKS).
    const jwks = await Promise.all(processes.map(async (p) => (await (await fetch(`${p.httpUrl}/.well-known/jwks.json`)).text())));
    expect(new Set(jwks).size).toBe(1);
  } finally {
    await client.end();
  }
  for (const p of processes.splice(0)) expect(await p.stop(), p.logLines.join("\n")).toBe(0);
}, 90_000);

it("three runs at the same instant on an empty database (one process, no start-up jitter): one migrates, the others wait and find nothing pending", async () => {
  const empty = await createTestDatabase();
  const sources = [0, 1, 2].map(() => createDataSource({ url: empty.url, poolSize: 2 }));
  try {
    await Promise.all(sources.map((s) => s.initialize()));
    const applied = await Promise.all(sources.map((s) => runMigrationsLocked(s)));
    expect(applied.map((a) => a.length).sort()).toEqual([0, 0, migrations.length]);
    const [row] = (await sources[0]!.query(`SELECT count(*)::int AS n, count(DISTINCT name)::int AS names FROM migrations`)) as Array<{ n: number; names: number }>;
    expect(row).toEqual({ n: migrations.length, names: migrations.length });
  } finally {
    await Promise.all(sources.map((s) => s.destroy()));
    await empty.drop();
  }
}, 60_000);
