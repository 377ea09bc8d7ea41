// One embedded PostgreSQL for the whole run; every test file creates its own database in it.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/db/embedded.js";
import { freePort } from "./ports.js";


let database: EmbeddedDatabase | undefined;
let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Tests that run the service as a process start the same build `npm start` runs.
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
  const root = path.resolve(".test-data");
  mkdirSync(root, { recursive: true });
  dir = path.join(root, `pg-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  database = await startEmbeddedPostgres({ dir, port: await freePort(), password: "test", persistent: false });
  project.provide("adminDatabaseUrl", database.url);
}

export async function teardown(): Promise<void> {
  await database?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

declare module "vitest" {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}
