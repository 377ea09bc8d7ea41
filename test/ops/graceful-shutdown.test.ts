// SIGTERM: both servers stop accepting, calls in flight finish within the grace period, then
// the database pool closes and the process exits 0. Past the grace period calls are cut off.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { createTestDatabase } from "../support/database.js";
import { spawnServiceProcess } from "../support/process.js";
import { prepared } from "../support/setup.js";
import { createGrpcJsTransport } from "../support/transports.js";

// Each test runs and stops its own service process, so the in-process harness does not fit.
const database = prepared(createTestDatabase, (db) => db.drop());

const PASSWORD = "a long enough passphrase";

it("finishes the calls in flight on both servers, refuses new ones, and exits 0", async () => {
  // One hash at a time: 12 sign-ups take several hundred milliseconds to drain.
  const proc = await spawnServiceProcess(database().url, { HASH_CONCURRENCY: "1", SHUTDOWN_GRACE_MS: "20000" });
  const grpcTransport = createGrpcJsTransport(proc.grpcAddress);
  const grpcAuth = createClient(AuthService, grpcTransport);
  const webAuth = createClient(AuthService, createConnectTransport({ baseUrl: proc.httpUrl, httpVersion: "1.1" }));
  await grpcAuth.signUp({ username: "warm-up", password: PASSWORD });

  const finishedAt: number[] = [];
  const inFlight = Array.from({ length: 12 }, (_, i) =>
    (i % 2 === 0 ? grpcAuth : webAuth).signUp({ username: `inflight-${i}`, password: PASSWORD }).then(
      () => "OK",
      (err: unknown) => Code[ConnectError.from(err).code],
    ).finally(() => finishedAt.push(Date.now())),
  );
  // Long enough for every request to have reached the server on a busy machine (a request still
  // in transit when the gateway closes is reset, as by any HTTP/1.1 server), short enough that
  // one hash at a time leaves most of the 12 sign-ups running.
  await new Promise((r) => setTimeout(r, 250));
  const stoppedAt = Date.now();
  const exited = proc.stop();
  await new Promise((r) => setTimeout(r, 100));
  const late = await createClient(AuthService, createConnectTransport({ baseUrl: proc.httpUrl, httpVersion: "1.1" }))
    .signUp({ username: "too-late", password: PASSWORD })
    .then(() => "OK", (err: unknown) => Code[ConnectError.from(err).code]);

  expect(await Promise.all(inFlight)).toEqual(Array(12).fill("OK"));
  // Calls were still running when SIGTERM came, and finished after it.
  expect(finishedAt.filter((at) => at > stoppedAt).length).toBeGreaterThan(0);
  expect(late).toBe("Unavailable");
  expect(await exited).toBe(0);
  const log = proc.logLines.join("\n");
  expect(log).toContain('"shutting down"');
  expect(log).toContain('"stopped"');
  grpcTransport.close();
});

it("cuts off calls still running when the grace period ends", async () => {
  const proc = await spawnServiceProcess(database().url, { HASH_CONCURRENCY: "1", SHUTDOWN_GRACE_MS: "100" });
  const transport = createGrpcJsTransport(proc.grpcAddress);
  const auth = createClient(AuthService, transport);
  await auth.signUp({ username: "warm-up-2", password: PASSWORD });
  const inFlight = Array.from({ length: 40 }, (_, i) =>
    auth.signUp({ username: `cut-${i}`, password: PASSWORD }).then(() => "OK", (err: unknown) => Code[ConnectError.from(err).code]),
  );
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  const code = await proc.stop();
  const results = await Promise.all(inFlight);
  expect(code).toBe(0);
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(results.filter((r) => r !== "OK").length).toBeGreaterThan(0);
  transport.close();
});
