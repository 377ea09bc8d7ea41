// Roles as configuration: new accounts get DEFAULT_ROLE (in their tokens and VerifyToken's
// answer), and a stored role that ROLES no longer names ranks lowest in AdminService.
import { describe, expect, it } from "vitest";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { setupService } from "../support/setup.js";
import { adminClient } from "./support.js";

const t = setupService({ env: { ROLES: "member,staff,admin", DEFAULT_ROLE: "staff" } });
const admin = adminClient(t, "grpc");

describe("roles as configuration", () => {
  it("gives new accounts DEFAULT_ROLE, carried by the access token", async () => {
    const account = await t.signUp("default-role");
    const verified = await t.verify(account.tokens.accessToken);
    expect(verified.role).toBe("staff");
    const [row] = (await t.db.query(`SELECT role FROM users WHERE id = $1`, [account.userId])) as [{ role: string }];
    expect(row.role).toBe("staff");
  });

  it("serves an account whose stored role is not in ROLES, and lets administrators act on it as the lowest", async () => {
    const manager = { headers: { "x-service-key": (await accountWithKey(t, uniqueAccountName("roles"), ["users.read", "users.manage"])).key } };
    const account = await t.signUp("legacy-role");
    await t.db.query(`UPDATE users SET role = 'legacy' WHERE id = $1`, [account.userId]);
    const tokens = await t.login(account.email);
    expect((await t.verify(tokens.accessToken)).role).toBe("legacy");
    expect((await admin.listUsers({ emailPrefix: account.email }, manager)).users.map((u) => u.user?.role)).toEqual(["legacy"]);
    expect((await admin.setUserRole({ userId: account.userId, role: "member" }, manager)).user?.user?.role).toBe("member");
  });
});
