// `npm run service-accounts` end to end: the built CLI (dist/src/service-accounts.js, as the npm
// script runs it) against the test database, and the key it prints used against a running
// service on the same database.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { startTestService } from "../support/service.js";
import { runBuiltCli, type CliRun } from "../support/cli.js";
import { prepared, setupService } from "../support/setup.js";

const database = prepared(createTestDatabase, (db) => db.drop());
const t = setupService(() => ({ database: database() }));
const { auth, tokens } = t.clients("grpc");

function cli(...args: string[]): Promise<CliRun> {
  return runBuiltCli("service-accounts.js", database().url, args);
}

/**
 * What VerifyToken with `key` answers once the running service has seen the CLI's change (it
 * learns of it by NOTIFY, a moment after the CLI commits): polled for up to 1 s.
 */
async function verifyWith(key: string, expected: "active" | Code): Promise<void> {
  const deadline = performance.now() + 1_000;
  for (;;) {
    const answer = await tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": key } }).then(
      (r) => (r.active ? "active" : "inactive"),
      (err: unknown) => (err instanceof ConnectError ? err.code : "thrown"),
    );
    if (answer === expected) return;
    if (performance.now() > deadline) throw new Error(`VerifyToken with the key answers ${answer}, not ${expected}, after 1 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const accessToken = t.prepare(async () => (await auth.signUp({ email: "cli@example.com", password: "a long enough passphrase" })).tokens!.accessToken);

describe("the service-accounts CLI", () => {
  it("creates an account, prints a key once that then calls VerifyToken, lists it, and revokes it", async () => {
    const created = await cli("create", "billing", "--permissions", "tokens.verify,tokens.issue", "--audiences", "orders", "--description", "Billing backend");
    expect(created).toMatchObject({ code: 0, stdout: "" });
    expect(created.stderr).toContain("created service account billing");

    const added = await cli("add-key", "billing", "--expires-in-days", "30");
    expect(added.code).toBe(0);
    const key = added.stdout.trim();
    expect(key).toMatch(/^isk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
    expect(added.stdout).toBe(`${key}\n`);
    const prefix = key.slice(4, 16);

    await verifyWith(key, "active");

    const listed = await cli("list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^billing\tactive\tpermissions=tokens.verify,tokens.issue\taudiences=orders\tBilling backend$/m);
    expect(listed.stdout).toContain(`key ${prefix}`);
    expect(listed.stdout).not.toContain(key.slice(-43));

    expect((await cli("add-certificate", "billing", "--spiffe", "spiffe://example.org/billing")).code).toBe(0);
    expect((await cli("revoke-key", prefix)).code).toBe(0);
    await verifyWith(key, Code.Unauthenticated);
    await expectError(tokens.verifyToken({ token: accessToken() }, { headers: { "x-service-key": key } }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
  });

  it("disables and enables an account", async () => {
    expect((await cli("create", "reports", "--permissions", "tokens.verify")).code).toBe(0);
    const key = (await cli("add-key", "reports")).stdout.trim();
    await verifyWith(key, "active");
    expect((await cli("disable", "reports")).code).toBe(0);
    await verifyWith(key, Code.Unauthenticated);
    expect((await cli("enable", "reports")).code).toBe(0);
    await verifyWith(key, "active");
  });

  it.each([
    [["create", "Bad_Name", "--permissions", "tokens.verify"], /INVALID_ARGUMENT: name/],
    [["create", "ok-name", "--permissions", "tokens.verify,root"], /UNKNOWN|permissions/],
    [["create", "ok-name"], /create needs --permissions/],
    [["create", "test", "--permissions", "tokens.verify"], /SERVICE_ACCOUNT_EXISTS/],
    [["add-key", "no-such-account"], /SERVICE_ACCOUNT_NOT_FOUND/],
    [["add-key", "billing", "--expires-in-days", "0"], /--expires-in-days/],
    [["revoke-key", "zzzzzzzzzzzz"], /SERVICE_KEY_NOT_FOUND/],
    [["add-certificate", "billing", "--spiffe", "https://example.org/x"], /INVALID_ARGUMENT: spiffe/],
    [["add-certificate", "billing"], /exactly one of --spiffe and --subject/],
    [["disable", "no-such-account"], /SERVICE_ACCOUNT_NOT_FOUND/],
    [["frobnicate"], /unknown command/],
    [["list", "--permissions", "x"], /list does not take --permissions/],
    [["create", "x", "--bogus"], /Unknown option/],
  ])("%j exits 1 with a clear message and stores nothing", async (args, message) => {
    const run = await t.expectUnchanged(() => cli(...args));
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(message);
  });
});

describe("a SERVICE_KEYS name that is also a service account", () => {
  it("stops the start with a message naming it", async () => {
    expect((await cli("create", "clash", "--permissions", "tokens.verify")).code).toBe(0);
    await expect(startTestService({ database: database(), env: { SERVICE_KEYS: `clash:${"k".repeat(40)}` } })).rejects.toThrow(/SERVICE_KEYS names "clash", which is also a service account/);
  });
});
