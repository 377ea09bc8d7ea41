import { afterAll, beforeAll, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { createClient } from "@connectrpc/connect";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { spawnServiceProcess, type ServiceProcess } from "../support/process.js";
import { createGrpcJsTransport } from "../support/transports.js";

let database: TestDatabase;
let proc: ServiceProcess;
beforeAll(async () => {
  database = await createTestDatabase();
  proc = await spawnServiceProcess(database.url);
});
afterAll(async () => {
  await proc?.stop();
  await database?.drop();
});

it("runs main.ts as a process on DATABASE_URL and exits cleanly on SIGTERM", async () => {
  const transport = createGrpcJsTransport(proc.grpcAddress);
  const auth = createClient(AuthService, transport);
  const res = await auth.signUp({ username: "process-user", password: "a long enough passphrase" });
  expect(res.user?.username).toBe("process-user");
  transport.close();
  const code = await proc.stop();
  expect(code, proc.logLines.join("\n")).toBe(0);
  expect(proc.logLines.some((l) => l.includes('"stopped"'))).toBe(true);
});
