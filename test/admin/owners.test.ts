// The highest role keeps an active holder (LAST_OWNER), decided inside each conditional statement:
// concurrent demotions, disablings or deletions of the last two owners cannot all succeed. A
// service on a database of its own, so that the suite knows every owner there is.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { UserStatus } from "../../gen/identity/v1/admin_service_pb.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { PASSWORD } from "../support/accounts.js";
import { setupService } from "../support/setup.js";
import { adminClient, bearer, person, stepUp } from "./support.js";

const clock = new ManualClock(new Date("2026-12-01T09:00:10Z"));
const t = setupService({ clock });
const admin = adminClient(t, "grpc");
const manager = t.prepare(async () => ({ headers: { "x-service-key": (await accountWithKey(t, uniqueAccountName("owners"), ["users.read", "users.manage"])).key } }));

async function activeOwners(): Promise<number> {
  const [row] = (await t.db.query(`SELECT count(*)::int AS n FROM users WHERE role = 'admin' AND status = 'active' AND deleted_at IS NULL`)) as [{ n: number }];
  return row.n;
}

/** Whether each call succeeded; a refusal must be LAST_OWNER. */
async function outcomes(calls: Array<Promise<unknown>>): Promise<boolean[]> {
  return Promise.all(
    calls.map((call) =>
      call.then(
        () => true,
        (err: unknown) => {
          expect(err).toBeInstanceOf(ConnectError);
          expect((err as ConnectError).code, (err as Error).message).toBe(Code.FailedPrecondition);
          return false;
        },
      ),
    ),
  );
}

describe("the last owner (ROLES=user,admin: admin is the highest role)", () => {
  it("refuses demoting, disabling and deleting the only active admin, themselves included", async () => {
    expect(await activeOwners()).toBe(0);
    const only = await person(t, clock, "only-owner", "admin");
    await t.expectUnchanged(async () => {
      await expectError(admin.setUserRole({ userId: only.userId, role: "user" }, manager()), { code: Code.FailedPrecondition, reason: "LAST_OWNER" });
      await expectError(admin.disableUser({ userId: only.userId }, manager()), { code: Code.FailedPrecondition, reason: "LAST_OWNER" });
      await expectError(admin.deleteUser({ userId: only.userId, reason: "leaving" }, manager()), { code: Code.FailedPrecondition, reason: "LAST_OWNER" });
    });
    const token = await stepUp(t, clock, only);
    await t.expectUnchanged(() => expectError(admin.setUserRole({ userId: only.userId, role: "user" }, bearer(token)), { code: Code.FailedPrecondition, reason: "LAST_OWNER" }));
    // With a second active admin, the first may step down.
    const second = await person(t, clock, "second-owner", "admin", false);
    expect((await admin.setUserRole({ userId: only.userId, role: "user" }, bearer(token))).user?.user?.role).toBe("user");
    // ... after which the demoted one is no administrator any more, at once (the stored role counts).
    await expectError(admin.getUser({ userId: second.userId }, bearer(token)), { code: Code.PermissionDenied, reason: "ADMIN_ROLE_REQUIRED" });
    await admin.setUserRole({ userId: only.userId, role: "admin" }, manager());
    expect(await activeOwners()).toBe(2);
  });

  it("refuses the last admin deleting their own account (DeleteAccount), and allows it beside another", async () => {
    const base = await activeOwners();
    const lone = await person(t, clock, "lone-owner", "admin", false);
    // Every other admin steps aside for the test, so that this one is the last.
    const others = (await t.db.query(`SELECT id FROM users WHERE role = 'admin' AND status = 'active' AND deleted_at IS NULL AND id <> $1`, [lone.userId])) as Array<{ id: string }>;
    await t.db.query(`UPDATE users SET role = 'user' WHERE id = ANY($1::uuid[])`, [others.map((o) => o.id)]);
    try {
      await t.expectUnchanged(
        () => expectError(t.clients("grpc").auth.deleteAccount({ password: PASSWORD }, bearer(lone.passwordToken)), { code: Code.FailedPrecondition, reason: "LAST_OWNER" }),
        ["rate_limits"],
      );
      await person(t, clock, "lone-owner-peer", "admin", false);
      await t.clients("grpc").auth.deleteAccount({ password: PASSWORD }, bearer(lone.passwordToken));
      expect(await activeOwners()).toBe(1);
    } finally {
      await t.db.query(`UPDATE users SET role = 'admin' WHERE id = ANY($1::uuid[])`, [others.map((o) => o.id)]);
    }
    expect(await activeOwners()).toBe(base + 1);
  });

  it("of concurrent demotions of the last two admins, exactly one succeeds", async () => {
    for (let round = 0; round < 5; round++) {
      const a = await person(t, clock, `race-a-${round}`, "user", false);
      const b = await person(t, clock, `race-b-${round}`, "user", false);
      // Only a and b hold the highest role.
      await t.db.query(`UPDATE users SET role = 'user' WHERE role = 'admin'`);
      await t.db.query(`UPDATE users SET role = 'admin' WHERE id = ANY($1)`, [[a.userId, b.userId]]);
      const done = await outcomes([
        admin.setUserRole({ userId: a.userId, role: "user" }, manager()),
        admin.setUserRole({ userId: b.userId, role: "user" }, manager()),
      ]);
      expect(done.filter(Boolean)).toHaveLength(1);
      expect(await activeOwners()).toBe(1);
    }
  });

  it("of a concurrent disable and delete of the last two admins, exactly one succeeds", async () => {
    const a = await person(t, clock, "mixed-a", "user", false);
    const b = await person(t, clock, "mixed-b", "user", false);
    await t.db.query(`UPDATE users SET role = 'user' WHERE role = 'admin'`);
    await t.db.query(`UPDATE users SET role = 'admin' WHERE id = ANY($1)`, [[a.userId, b.userId]]);
    const done = await outcomes([admin.disableUser({ userId: a.userId }, manager()), admin.deleteUser({ userId: b.userId, reason: "race" }, manager())]);
    expect(done.filter(Boolean)).toHaveLength(1);
    expect(await activeOwners()).toBe(1);
    // Disabled owners do not count: the disabled one can be demoted, the active one cannot.
    const [disabled, active] = done[0] ? [a, b] : [b, a];
    if (done[0]) {
      expect((await admin.getUser({ userId: disabled.userId }, manager())).user?.status).toBe(UserStatus.DISABLED);
      expect((await admin.setUserRole({ userId: disabled.userId, role: "user" }, manager())).user?.user?.role).toBe("user");
    }
    await expectError(admin.setUserRole({ userId: active.userId, role: "user" }, manager()), { code: Code.FailedPrecondition, reason: "LAST_OWNER" });
  });

  it("restores a deleted account only while its identifiers are free and within ACCOUNT_RESTORE_DAYS", async () => {
    const taken = await t.signUp("restore-taken");
    await admin.deleteUser({ userId: taken.userId, reason: "test" }, manager());
    // Someone signs up with the freed address meanwhile.
    await t.signUp("restore-taker", { email: taken.email });
    await t.expectUnchanged(() => expectError(admin.restoreUser({ userId: taken.userId }, manager()), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" }));

    const late = await t.signUp("restore-late");
    await admin.deleteUser({ userId: late.userId, reason: "test" }, manager());
    const deadline = (await admin.getUser({ userId: late.userId }, manager())).user!.restoreDeadline!;
    expect(Number(deadline.seconds) * 1000).toBe(clock.now().getTime() - (clock.now().getTime() % 1000) + 30 * 86_400_000);
    clock.advance(30 * 86_400_000 + 1_000);
    await t.expectUnchanged(() => expectError(admin.restoreUser({ userId: late.userId }, manager()), { code: Code.FailedPrecondition, reason: "NOT_RESTORABLE" }));
  });
});
