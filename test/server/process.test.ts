import { expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { createClient } from "@connectrpc/connect";
import { createTestDatabase } from "../support/database.js";
import { spawnServiceProcess } from "../support/process.js";
import { prepared } from "../support/setup.js";
import { createGrpcJsTransport } from "../support/transports.js";

// The process stands alone: the in-process harness (setupService) does not fit it.
const database = prepared(createTestDatabase, (db) => db.drop());
const proc = prepared(() => spawnServiceProcess(database().url), async (running) => void (await running.stop()));

it("runs main.ts as a process on DATABASE_URL and exits cleanly on SIGTERM", async () => {
  const transport = createGrpcJsTransport(proc().grpcAddress);
  const auth = createClient(AuthService, transport);
  const res = await auth.signUp({ username: "process-user", password: "a long enough passphrase" });
  expect(res.user?.username).toBe("process-user");
  transport.close();
  const code = await proc().stop();
  expect(code, proc().logLines.join("\n")).toBe(0);
  expect(proc().logLines.some((l) => l.includes('"stopped"'))).toBe(true);
});
