// AdminService over grpc-js (a service account holding users.read / users.manage) and over every
// transport for a person whose role administers and whose token proves a fresh second factor.
// Every refusal leaves the stored data unchanged.
import { Code } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { OtpChannel } from "../../gen/identity/v1/common_pb.js";
import { UserStatus } from "../../gen/identity/v1/admin_service_pb.js";
import { AuditEventType } from "../../gen/identity/v1/auth_service_pb.js";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { PASSWORD, signUp, uniqueEmail } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { setupService } from "../support/setup.js";
import { transportNames, type TransportName } from "../support/transports.js";
import { adminClient, bearer, person, stepUp, stepUpTokens } from "./support.js";

const clock = new ManualClock(new Date("2026-12-01T09:00:10Z"));
// Four roles as in seed 004; staff do not administer.
const t = setupService({ clock, env: { ROLES: "user,staff,admin,owner", ADMIN_ROLES: "admin,owner" } });

const service = t.prepare(async () => {
  const reader = await accountWithKey(t, uniqueAccountName("admin-reader"), ["users.read"]);
  const manager = await accountWithKey(t, uniqueAccountName("admin-manager"), ["users.read", "users.manage"]);
  // An owner that stays active, so that the owner rule never refuses the suite's other changes.
  await person(t, clock, "standing-owner", "owner", false);
  return { reader: { headers: { "x-service-key": reader.key } }, manager: { headers: { "x-service-key": manager.key }, name: manager.name } };
});

describe("AdminService for a service account over grpc-js", () => {
  const admin = adminClient(t, "grpc");

  it("lists, reads, changes the role, disables, enables, ends sessions, deletes and restores", async () => {
    await lifecycle("grpc", service().manager, `service:${service().manager.name}`);
  });

  it("reads with users.read, and changes only with users.manage", async () => {
    const target = await t.signUp("svc-target");
    const got = await admin.getUser({ userId: target.userId }, service().reader);
    expect(got.user?.user?.email).toBe(target.email);
    expect(got.user?.status).toBe(UserStatus.ACTIVE);
    expect(got.user?.activeSessions).toBe(1);
    await t.expectUnchanged(() => expectError(admin.disableUser({ userId: target.userId }, service().reader), { code: Code.PermissionDenied, reason: "PERMISSION_MISSING" }));
    const changed = await admin.setUserRole({ userId: target.userId, role: "staff" }, service().manager);
    expect(changed.user?.user?.role).toBe("staff");
    // New tokens carry the new role; VerifyToken reports it.
    const tokens = await t.login(target.email);
    expect((await t.verify(tokens.accessToken)).role).toBe("staff");
  });

  it("ends the account's sessions with the role change when asked", async () => {
    const target = await t.signUp("svc-revoke-role");
    const changed = await admin.setUserRole({ userId: target.userId, role: "staff", revokeSessions: true }, service().manager);
    expect(changed.user).toMatchObject({ activeSessions: 0, user: { role: "staff" } });
    expect((await t.verify(target.tokens.accessToken)).reason).toBe(InactiveReason.SESSION_REVOKED);
    const next = await t.login(target.email);
    expect((await t.verify(next.accessToken)).role).toBe("staff");
    // Already staff: the sessions still end when asked.
    expect((await admin.setUserRole({ userId: target.userId, role: "staff", revokeSessions: true }, service().manager)).user?.activeSessions).toBe(0);
    expect((await t.verify(next.accessToken)).reason).toBe(InactiveReason.SESSION_REVOKED);
  });

  it("audits the act with the service as actor, shown to the person as made by an administrator", async () => {
    const target = await t.signUp("svc-audit");
    await admin.setUserRole({ userId: target.userId, role: "admin" }, service().manager);
    const { events } = await t.clients("grpc").auth.listActivity({}, bearer(target.tokens.accessToken));
    const changed = events.find((e) => e.type === AuditEventType.ROLE_CHANGED)!;
    expect(changed.byAdministrator).toBe(true);
    expect(changed.actor).toBe(`service:${service().manager.name}`);
    expect(changed.caller).toBe(service().manager.name);
    expect(changed.details).toMatchObject({ role_before: "user", role_after: "admin" });
    expect(changed.ipAddress).toBe("127.0.0.1");
    const own = events.find((e) => e.type === AuditEventType.SIGN_UP)!;
    expect(own.byAdministrator).toBe(false);
    const seen = await admin.listUserActivity({ userId: target.userId }, service().reader);
    expect(seen.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it("refuses a call without any credential, and a service key on the web gateway", async () => {
    const target = await t.signUp("svc-nokey");
    await expectError(admin.getUser({ userId: target.userId }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
    await t.expectUnchanged(() =>
      expectError(adminClient(t, "connect").disableUser({ userId: target.userId }, service().manager), { code: Code.PermissionDenied, reason: "PERMISSION_MISSING" }),
    );
  });
});

describe.each(transportNames)("AdminService for a person over %s", (name) => {
  const admin = adminClient(t, name);
  const { auth } = t.clients(name);
  const adminPerson = t.prepare(() => person(t, clock, `admin-${name}`, "admin"));

  it("lists, reads, changes the role, disables, enables, ends sessions, deletes and restores", async () => {
    const token = await stepUp(t, clock, adminPerson());
    await lifecycle(name, bearer(token), `user:${adminPerson().userId}`);
  });

  it("resets a person's second factor and tells them", async () => {
    const token = await stepUp(t, clock, adminPerson());
    const target = await person(t, clock, `reset-${name}`, "user");
    const reset = await admin.resetUserMfa({ userId: target.userId, reason: "lost phone" }, bearer(token));
    expect(reset.user?.user?.mfaEnabled).toBe(false);
    const [{ n }] = (await t.db.query(`SELECT (SELECT count(*) FROM totp_credentials WHERE user_id = $1) + (SELECT count(*) FROM backup_codes WHERE user_id = $1) AS n`, [target.userId])) as [{ n: string }];
    expect(Number(n)).toBe(0);
    expect(t.outbox.messages(target.email).at(-1)?.subject).toBe("Your two-step verification was reset");
    // Signs in with the password alone now.
    await t.login(target.email, PASSWORD, name);
    await t.expectUnchanged(() => expectError(admin.resetUserMfa({ userId: target.userId }, bearer(token)), { code: Code.FailedPrecondition, reason: "MFA_NOT_ENABLED" }));
  });

  it("resets an email-code second factor too", async () => {
    const token = await stepUp(t, clock, adminPerson());
    const target = await person(t, clock, `reset-code-${name}`, "user", false);
    await t.db.query(`UPDATE users SET email_verified_at = now() WHERE id = $1`, [target.userId]);
    const session = await t.login(target.email, PASSWORD, name);
    await t.clients(name).mfa.enableCodeFactor({ channel: OtpChannel.EMAIL, password: PASSWORD }, bearer(session.accessToken));
    await admin.resetUserMfa({ userId: target.userId, reason: "lost mailbox" }, bearer(token));
    const [{ n }] = (await t.db.query(`SELECT count(*) AS n FROM mfa_code_factors WHERE user_id = $1`, [target.userId])) as [{ n: string }];
    expect(Number(n)).toBe(0);
    // Signs in with the password alone now, and a second reset has nothing left to remove.
    expect((await t.clients(name).auth.login({ identifier: target.email, password: PASSWORD })).result.case).toBe("tokens");
    await t.expectUnchanged(() => expectError(admin.resetUserMfa({ userId: target.userId }, bearer(token)), { code: Code.FailedPrecondition, reason: "MFA_NOT_ENABLED" }));
  });

  it("refuses a person without an administrator's role, and an administrator without a recent second factor", async () => {
    const target = await t.signUp(`refused-${name}`);
    const staff = await person(t, clock, `staff-${name}`, "staff");
    const staffToken = await stepUp(t, clock, staff);
    await t.expectUnchanged(async () => {
      await expectError(admin.disableUser({ userId: target.userId }, bearer(staffToken)), { code: Code.PermissionDenied, reason: "ADMIN_ROLE_REQUIRED" });
      await expectError(admin.listUsers({}, bearer(target.tokens.accessToken)), { code: Code.PermissionDenied, reason: "ADMIN_ROLE_REQUIRED" });
      // Password only: no second factor in amr.
      await expectError(admin.disableUser({ userId: target.userId }, bearer(adminPerson().passwordToken)), { code: Code.Unauthenticated, reason: "STEP_UP_REQUIRED" });
      await expectError(admin.getUser({ userId: target.userId }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
    });
    // A second factor proven 11 minutes ago (ADMIN_MAX_AUTH_AGE_SECONDS defaults to 10 minutes),
    // on a session refreshed since: the refreshed token keeps the session's auth_time.
    const pair = await stepUpTokens(t, clock, adminPerson());
    await admin.getUser({ userId: target.userId }, bearer(pair.accessToken));
    const { tokens } = t.clients("grpc");
    clock.advance(4 * 60_000);
    const refreshed = await tokens.refreshToken({ refreshToken: pair.refreshToken });
    await admin.getUser({ userId: target.userId }, bearer(refreshed.tokens!.accessToken));
    clock.advance(4 * 60_000);
    const again = await tokens.refreshToken({ refreshToken: refreshed.tokens!.refreshToken });
    clock.advance(3 * 60_000);
    expect((await t.verify(again.tokens!.accessToken)).active).toBe(true);
    await t.expectUnchanged(() => expectError(admin.disableUser({ userId: target.userId }, bearer(again.tokens!.accessToken)), { code: Code.Unauthenticated, reason: "STEP_UP_REQUIRED" }));
  });

  it("refuses raising anyone above one's own role, and acting on an account above it", async () => {
    const token = await stepUp(t, clock, adminPerson());
    const target = await t.signUp(`above-${name}`);
    const owner = await person(t, clock, `owner-${name}`, "owner", false);
    await t.expectUnchanged(async () => {
      await expectError(admin.setUserRole({ userId: target.userId, role: "owner" }, bearer(token)), { code: Code.PermissionDenied, reason: "ROLE_ABOVE_OWN" });
      await expectError(admin.setUserRole({ userId: adminPerson().userId, role: "owner" }, bearer(token)), { code: Code.PermissionDenied, reason: "ROLE_ABOVE_OWN" });
      await expectError(admin.disableUser({ userId: owner.userId }, bearer(token)), { code: Code.PermissionDenied, reason: "ACCOUNT_ROLE_ABOVE_OWN" });
      await expectError(admin.setUserRole({ userId: owner.userId, role: "user" }, bearer(token)), { code: Code.PermissionDenied, reason: "ACCOUNT_ROLE_ABOVE_OWN" });
      await expectError(admin.revokeUserSessions({ userId: owner.userId }, bearer(token)), { code: Code.PermissionDenied, reason: "ACCOUNT_ROLE_ABOVE_OWN" });
      await expectError(admin.deleteUser({ userId: owner.userId, reason: "x" }, bearer(token)), { code: Code.PermissionDenied, reason: "ACCOUNT_ROLE_ABOVE_OWN" });
    });
    // Reading is not acting: an administrator sees an owner.
    expect((await admin.getUser({ userId: owner.userId }, bearer(token))).user?.user?.role).toBe("owner");
  });

  it("refuses bad ids, roles, filters and page tokens", async () => {
    const token = await stepUp(t, clock, adminPerson());
    await t.expectUnchanged(async () => {
      await expectError(admin.getUser({ userId: "not-an-id" }, bearer(token)), { code: Code.InvalidArgument, fields: ["user_id"] });
      await expectError(admin.getUser({ userId: "00000000-0000-4000-8000-000000000000" }, bearer(token)), { code: Code.NotFound, reason: "USER_NOT_FOUND" });
      await expectError(admin.setUserRole({ userId: adminPerson().userId, role: "root" }, bearer(token)), { code: Code.InvalidArgument, fields: ["role"] });
      await expectError(admin.deleteUser({ userId: adminPerson().userId, reason: "" }, bearer(token)), { code: Code.InvalidArgument, fields: ["reason"] });
      await expectError(admin.disableUser({ userId: adminPerson().userId, reason: "a\u202Eb" }, bearer(token)), { code: Code.InvalidArgument, fields: ["reason"] });
      await expectError(admin.listUsers({ role: "root", phonePrefix: "12a", status: 9 as UserStatus }, bearer(token)), { code: Code.InvalidArgument, fields: ["role", "phone_prefix", "status"] });
      const at = timestampFromDate(clock.now());
      await expectError(admin.listUsers({ createTimeAfter: at, createTimeBefore: at }, bearer(token)), { code: Code.InvalidArgument, fields: ["create_time_before"] });
      await expectError(admin.listUsers({ pageToken: "bm90IGEgdG9rZW4" }, bearer(token)), { code: Code.InvalidArgument, fields: ["page_token"] });
      await expectError(admin.listUserActivity({ userId: adminPerson().userId, pageToken: "x" }, bearer(token)), { code: Code.InvalidArgument, fields: ["page_token"] });
    });
  });

  it("pages in a stable order with tokens bound to the filter", async () => {
    const token = await stepUp(t, clock, adminPerson());
    const tag = `page-${name}-${Math.random().toString(36).slice(2, 6)}`;
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await signUp(t.clients("grpc").auth, tag, { email: uniqueEmail(tag) })).userId);
    const prefix = `${tag}`.toLowerCase();
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await admin.listUsers({ emailPrefix: prefix, pageSize: 2, pageToken }, bearer(token));
      seen.push(...page.users.map((u) => u.user!.id));
      pageToken = page.nextPageToken;
      if (pageToken !== "") {
        // The same token with another filter is refused (AIP-158).
        await expectError(admin.listUsers({ emailPrefix: prefix, role: "user", pageSize: 2, pageToken }, bearer(token)), { code: Code.InvalidArgument, fields: ["page_token"] });
      }
    } while (pageToken !== "");
    expect(seen).toEqual(made);
  });
});

type CallOptions = { readonly headers: Record<string, string> };

/**
 * Every RPC of AdminService in one account's life, as `options` (a person's bearer token or a
 * service key) over `via`; every change audited with `actor`.
 */
async function lifecycle(via: TransportName, options: CallOptions, actor: string): Promise<void> {
  const admin = adminClient(t, via);
  const { auth } = t.clients(via);
  const target = await t.signUp(`life-${via}`);
  const listed = await admin.listUsers({ emailPrefix: target.email.slice(0, -8).toUpperCase() }, options);
  expect(listed.users.map((u) => u.user?.id)).toEqual([target.userId]);
  const got = await admin.getUser({ userId: target.userId.toUpperCase() }, options);
  expect(got.user).toMatchObject({ status: UserStatus.ACTIVE, activeSessions: 1 });
  expect(got.user?.lastLoginTime).toBeDefined();

  const staff = await admin.setUserRole({ userId: target.userId, role: "staff" }, options);
  expect(staff.user?.user?.role).toBe("staff");

  const disabled = await admin.disableUser({ userId: target.userId, reason: "abuse report 12" }, options);
  expect(disabled.user?.status).toBe(UserStatus.DISABLED);
  expect(disabled.user?.disableTime).toBeDefined();
  expect(disabled.user?.activeSessions).toBe(0);
  // Refused at once: VerifyToken, refresh, password sign-in.
  const verified = await t.verify(target.tokens.accessToken);
  expect(verified.active).toBe(false);
  expect(verified.reason).toBe(InactiveReason.USER_DISABLED);
  await expectError(t.clients("grpc").tokens.refreshToken({ refreshToken: target.tokens.refreshToken }), { code: Code.Unauthenticated });
  // The right password is told the account is disabled (issue 16); a wrong one answers as for anyone.
  await expectError(auth.login({ identifier: target.email, password: PASSWORD }), { code: Code.PermissionDenied, reason: "ACCOUNT_DISABLED" });
  await expectError(auth.login({ identifier: target.email, password: `${PASSWORD}!` }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
  // Disabling again changes nothing and records nothing.
  await t.expectUnchanged(() => admin.disableUser({ userId: target.userId }, options));

  const enabled = await admin.enableUser({ userId: target.userId }, options);
  expect(enabled.user?.status).toBe(UserStatus.ACTIVE);
  const again = await t.login(target.email, PASSWORD, via);
  expect((await t.verify(again.accessToken)).active).toBe(true);
  // The sessions disabling ended stay ended.
  expect((await t.verify(target.tokens.accessToken)).active).toBe(false);

  const revoked = await admin.revokeUserSessions({ userId: target.userId }, options);
  expect(revoked.revokedSessions).toBe(1);
  expect((await t.verify(again.accessToken)).reason).toBe(InactiveReason.SESSION_REVOKED);

  const deleted = await admin.deleteUser({ userId: target.userId, reason: "asked by email" }, options);
  expect(deleted.user?.status).toBe(UserStatus.DELETED);
  expect(deleted.user?.restoreDeadline).toBeDefined();
  await t.expectUnchanged(async () => {
    await expectError(admin.disableUser({ userId: target.userId }, options), { code: Code.FailedPrecondition, reason: "USER_DELETED" });
    await expectError(admin.setUserRole({ userId: target.userId, role: "user" }, options), { code: Code.FailedPrecondition, reason: "USER_DELETED" });
    expect((await admin.listUsers({ emailPrefix: target.email }, options)).users).toEqual([]);
  });
  expect((await admin.listUsers({ emailPrefix: target.email, status: UserStatus.DELETED }, options)).users.map((u) => u.user?.id)).toEqual([target.userId]);
  const restored = await admin.restoreUser({ userId: target.userId }, options);
  expect(restored.user?.status).toBe(UserStatus.ACTIVE);
  await t.login(target.email, PASSWORD, via);
  await t.expectUnchanged(() => expectError(admin.restoreUser({ userId: target.userId }, options), { code: Code.FailedPrecondition, reason: "NOT_RESTORABLE" }));

  const { events } = await admin.listUserActivity({ userId: target.userId }, options);
  const byAdmin = events.filter((e) => e.byAdministrator);
  // One instant on the test's clock: compared as a set.
  expect(byAdmin.map((e) => e.type).sort()).toEqual([
    AuditEventType.ROLE_CHANGED, AuditEventType.ACCOUNT_DISABLED, AuditEventType.ACCOUNT_ENABLED,
    AuditEventType.ACCOUNT_RESTORED, AuditEventType.SESSIONS_REVOKED_BY_ADMIN, AuditEventType.ACCOUNT_DELETED,
  ].sort());
  expect(byAdmin.every((e) => e.actor === actor)).toBe(true);
  expect(byAdmin.find((e) => e.type === AuditEventType.ACCOUNT_DISABLED)?.details).toMatchObject({ reason: "abuse report 12", ended_sessions: "1" });
  expect(byAdmin.find((e) => e.type === AuditEventType.ACCOUNT_DELETED)?.details).toMatchObject({ reason: "asked by email", status_before: "active" });
}
