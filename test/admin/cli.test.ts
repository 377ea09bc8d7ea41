// `npm run admin -- grant <email|username> <role>` end to end: the built CLI (dist/src/admin-cli.js,
// as the npm script runs it) against the test database; the account's next token carries the
// role, and the grant is in its activity as made by an administrator ("cli").
import { describe, expect, it } from "vitest";
import { AuditEventType } from "../../gen/identity/v1/auth_service_pb.js";
import { bearer, uniqueUsername } from "../support/accounts.js";
import { createTestDatabase } from "../support/database.js";
import { runBuiltCli, type CliRun } from "../support/cli.js";
import { prepared, setupService } from "../support/setup.js";

const database = prepared(createTestDatabase, (db) => db.drop());
const t = setupService(() => ({ database: database() }));

function cli(...args: string[]): Promise<CliRun> {
  return runBuiltCli("admin-cli.js", database().url, args);
}

describe("npm run admin -- grant", () => {
  it("grants a role by email, audited as the cli; the next token carries it", async () => {
    const account = await t.signUp("cli-grant");
    const run = await cli("grant", account.email.toUpperCase(), "admin");
    expect(run.stderr).toContain(`${account.userId}: user -> admin`);
    expect(run.code).toBe(0);
    const tokens = await t.login(account.email);
    expect((await t.verify(tokens.accessToken)).role).toBe("admin");
    const { events } = await t.clients("grpc").auth.listActivity({}, bearer(tokens.accessToken));
    const granted = events.find((e) => e.type === AuditEventType.ROLE_CHANGED)!;
    expect(granted).toMatchObject({ actor: "cli", byAdministrator: true, details: { role_before: "user", role_after: "admin" } });
    // Again: nothing changes, and it says so.
    const again = await cli("grant", account.email, "admin");
    expect(again).toMatchObject({ code: 0 });
    expect(again.stderr).toContain("already holds admin");
  });

  it("grants by username", async () => {
    const username = uniqueUsername("cli");
    const account = await t.signUp("cli-username", { username });
    expect((await cli("grant", username, "admin")).code).toBe(0);
    const [row] = (await t.db.query(`SELECT role FROM users WHERE id = $1`, [account.userId])) as [{ role: string }];
    expect(row.role).toBe("admin");
  });

  it("refuses an unknown role, an unknown account, bad usage, and demoting the last admin; stores nothing", async () => {
    const account = await t.signUp("cli-refused");
    await t.expectUnchanged(async () => {
      const unknownRole = await cli("grant", account.email, "root");
      expect(unknownRole.code).toBe(1);
      expect(unknownRole.stderr).toContain(`unknown role "root"`);
      const unknownAccount = await cli("grant", "nobody-here@example.com", "admin");
      expect(unknownAccount.code).toBe(1);
      expect(unknownAccount.stderr).toContain("USER_NOT_FOUND");
      expect((await cli("grant", account.email)).code).toBe(1);
      expect((await cli("revoke", account.email, "admin")).stderr).toContain(`unknown command "revoke"`);
    });
    // Only the admins granted above hold the highest role; demote all but one, then the last.
    const admins = (await t.db.query(`SELECT email, username FROM users WHERE role = 'admin' AND status = 'active' AND deleted_at IS NULL ORDER BY created_at`)) as Array<{ email: string }>;
    expect(admins.length).toBe(2);
    expect((await cli("grant", admins[0]!.email, "user")).code).toBe(0);
    await t.expectUnchanged(async () => {
      const last = await cli("grant", admins[1]!.email, "user");
      expect(last.code).toBe(1);
      expect(last.stderr).toContain("LAST_OWNER");
    });
  });
});
