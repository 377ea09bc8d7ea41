// Administration of accounts: what AdminService and the admin command line do. Each change is one
// conditional statement of the store (src/store/admin-users.ts) that carries the rules (an actor
// acts only on roles up to its own; the highest role keeps an active holder); when it changes
// nothing, the account is read again to say why. Every change is audited on the target account
// with its actor, the values before and after, and the client address.
import { UniqueViolationError, type AdminGuard, type AdminUserRow, type Store, type UserFilter } from "../../store/index.js";
import type { Logger } from "../../logger.js";
import type { AuditEventType, AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import { AppError } from "../errors.js";
import type { OtpSenders } from "../otp/messages.js";
import type { Sessions } from "../sessions/sessions.js";
import type { Revocations } from "../tokens/revocation.js";
import type { AuditEventRow } from "../../store/index.js";
import { actorName, type Actor, type Roles } from "./roles.js";
import { decodeBoundPageToken, encodeBoundPageToken, type Page } from "../paging.js";

export type { Actor } from "./roles.js";

export interface Administration {
  readonly roles: Roles;
  list(filter: UserFilter, page: Page): Promise<{ users: AdminUserRow[]; nextPageToken: string }>;
  get(userId: string): Promise<AdminUserRow>;
  setRole(actor: Actor, userId: string, role: string, revokeSessions: boolean, client: ClientMeta): Promise<AdminUserRow>;
  disable(actor: Actor, userId: string, reason: string, client: ClientMeta): Promise<AdminUserRow>;
  enable(actor: Actor, userId: string, client: ClientMeta): Promise<AdminUserRow>;
  delete(actor: Actor, userId: string, reason: string, client: ClientMeta): Promise<AdminUserRow>;
  restore(actor: Actor, userId: string, client: ClientMeta): Promise<AdminUserRow>;
  revokeSessions(actor: Actor, userId: string, client: ClientMeta): Promise<number>;
  resetMfa(actor: Actor, userId: string, reason: string, client: ClientMeta): Promise<AdminUserRow>;
  activity(userId: string, page: Page): Promise<{ events: AuditEventRow[]; nextPageToken: string }>;
  /** The grant of the admin command line: the account by email or username. */
  findByIdentifier(kind: "email" | "username", value: string): Promise<AdminUserRow>;
  /** When a deleted account can no longer be restored. */
  restoreDeadline(deletedAt: Date): Date;
}

export type AdministrationDb = Pick<Store, "transaction" | "direct" | "adminUsers" | "users">;

export interface AdministrationDeps {
  readonly db: AdministrationDb;
  readonly clock: Clock;
  readonly roles: Roles;
  readonly sessions: Sessions;
  readonly revocations: Revocations;
  readonly audit: AuditLog;
  readonly senders: OtpSenders;
  readonly logger: Logger;
  readonly restoreDays: number;
}

const DAY_MS = 86_400_000;

export function createAdministration({ db, clock, roles, sessions, revocations, audit, senders, logger, restoreDays }: AdministrationDeps): Administration {
  function guardOf(actor: Actor): AdminGuard {
    return { actable: roles.upTo(roles.power(actor)), known: roles.all, highest: roles.highest };
  }

  async function view(userId: string): Promise<AdminUserRow> {
    const found = await db.adminUsers.view(db.direct, userId);
    if (!found) throw new AppError("USER_NOT_FOUND", `no account ${userId}`);
    return found;
  }

  /** Refuses an actor acting on an account above its role (a cheap early answer; the statement decides). */
  function requireActable(actor: Actor, target: AdminUserRow): void {
    if (roles.rank(target.user.role) > roles.power(actor)) {
      throw new AppError("ACCOUNT_ROLE_ABOVE_OWN", `${actorName(actor)} may not act on ${target.user.id} (${target.user.role})`);
    }
  }

  /**
   * Why a conditional statement changed nothing, from the account as it is now: it is gone, above
   * the actor, deleted, or it was the last active holder of the highest role. Undefined when none
   * applies: the state already was the one asked for (the call is then a no-op).
   */
  async function whyUnchanged(actor: Actor, userId: string, options: { ownerRule: boolean; deletedIsRefused: boolean }): Promise<AppError | undefined> {
    const now = await db.adminUsers.view(db.direct, userId);
    if (!now) return new AppError("USER_NOT_FOUND", `no account ${userId}`);
    if (roles.rank(now.user.role) > roles.power(actor)) return new AppError("ACCOUNT_ROLE_ABOVE_OWN", `${actorName(actor)} may not act on ${userId}`);
    if (options.deletedIsRefused && now.user.deletedAt !== null) return new AppError("USER_DELETED", `account ${userId} is deleted`);
    if (options.ownerRule && now.user.role === roles.highest && db.users.isLive(now.user)) return new AppError("LAST_OWNER", `${userId} is the last active ${roles.highest}`);
    return undefined;
  }

  async function record(actor: Actor, userId: string, type: AuditEventType, client: ClientMeta, details: Record<string, string>, tx: Parameters<AuditLog["record"]>[1]): Promise<void> {
    await audit.record({ userId, type, client, actor: actorName(actor), sessionId: actor.kind === "user" ? actor.sessionId : null, details: { actor: actorName(actor), ...details } }, tx);
  }

  function reasonText(reason: string): string {
    return reason.normalize("NFKC").trim();
  }

  async function notifyMfaReset(user: AdminUserRow["user"]): Promise<void> {
    // Told on the account's own contact, as a second factor matters to the person: email first.
    const target = user.email !== null && senders.email ? { channel: "email" as const, to: user.email } : user.phone !== null && senders.sms ? { channel: "sms" as const, to: user.phone } : undefined;
    if (!target) return;
    const sender = senders[target.channel]!;
    try {
      await sender.send({
        channel: target.channel,
        to: target.to,
        subject: "Your two-step verification was reset",
        text: "An administrator removed the authenticator and backup codes of your account. Sign in with your password and set up two-step verification again. If you did not ask for this, contact your administrator.",
      });
    } catch (err) {
      // The reset stands (it is audited); a lost notice is logged, not answered as a failure.
      logger.warn({ err, userId: user.id, provider: sender.name }, "mfa reset notice not sent");
    }
  }

  /** RevokeUserSessions (and SetUserRole with revoke_sessions when the role was already held). */
  async function endSessions(actor: Actor, userId: string, client: ClientMeta): Promise<number> {
    const target = await view(userId);
    requireActable(actor, target);
    if (target.user.deletedAt !== null) throw new AppError("USER_DELETED", `account ${userId} is deleted`);
    const ended = await db.transaction(async (tx) => {
      const now = clock.now();
      const ids = await db.adminUsers.revokeSessions(tx, userId, guardOf(actor), "revoked_by_admin", now);
      if (ids === null) return null;
      await record(actor, userId, "SESSIONS_REVOKED_BY_ADMIN", client, { ended_sessions: String(ids.length) }, tx);
      revocations.sessionsRevoked(ids, now);
      return ids.length;
    });
    if (ended === null) throw (await whyUnchanged(actor, userId, { ownerRule: false, deletedIsRefused: true })) ?? new AppError("ACCOUNT_ROLE_ABOVE_OWN", `${userId} changed role`);
    return ended;
  }

  return {
    roles,

    async list(filter, page) {
      const cursor = decodeBoundPageToken(page.pageToken, filter);
      const found = await db.adminUsers.list(db.direct, filter, page.pageSize + 1, cursor?.id);
      const users = found.slice(0, page.pageSize);
      const last = users[users.length - 1];
      return { users, nextPageToken: found.length > page.pageSize && last ? encodeBoundPageToken(last.user.createdAt, last.user.id, filter) : "" };
    },

    get: view,

    async setRole(actor, userId, role, revokeSessions, client) {
      if (roles.rank(role) > roles.power(actor)) throw new AppError("ROLE_ABOVE_OWN", `${actorName(actor)} may not give ${role}`);
      requireActable(actor, await view(userId));
      const changed = await db.transaction(async (tx) => {
        const now = clock.now();
        const before = await db.adminUsers.setRole(tx, userId, role, guardOf(actor), now);
        if (!before) return false;
        const ended = revokeSessions ? await sessions.revokeAll(userId, "revoked_by_admin", undefined, tx) : 0;
        await record(actor, userId, "ROLE_CHANGED", client, { role_before: before.before, role_after: role, ended_sessions: String(ended) }, tx);
        return true;
      });
      if (!changed) {
        const why = await whyUnchanged(actor, userId, { ownerRule: role !== roles.highest, deletedIsRefused: true });
        if (why) throw why;
        // Already holding the role: nothing to change; still end the sessions when asked.
        if (revokeSessions) await endSessions(actor, userId, client);
      }
      return view(userId);
    },

    async disable(actor, userId, reason, client) {
      requireActable(actor, await view(userId));
      const changed = await db.transaction(async (tx) => {
        const now = clock.now();
        if (!(await db.adminUsers.disable(tx, userId, guardOf(actor), now))) return false;
        const ended = await sessions.revokeAll(userId, "account_disabled", undefined, tx);
        await record(actor, userId, "ACCOUNT_DISABLED", client, { reason: reasonText(reason), status_before: "active", status_after: "disabled", ended_sessions: String(ended) }, tx);
        // This instance at once; the others on the NOTIFY of the commit.
        revocations.userTokensInvalidated(userId, now, "disabled");
        return true;
      });
      if (!changed) {
        const why = await whyUnchanged(actor, userId, { ownerRule: true, deletedIsRefused: true });
        if (why) throw why;
      }
      return view(userId);
    },

    async enable(actor, userId, client) {
      requireActable(actor, await view(userId));
      const changed = await db.transaction(async (tx) => {
        if (!(await db.adminUsers.enable(tx, userId, guardOf(actor), clock.now()))) return false;
        await record(actor, userId, "ACCOUNT_ENABLED", client, { status_before: "disabled", status_after: "active" }, tx);
        return true;
      });
      if (!changed) {
        const why = await whyUnchanged(actor, userId, { ownerRule: false, deletedIsRefused: true });
        if (why) throw why;
      }
      return view(userId);
    },

    async delete(actor, userId, reason, client) {
      const target = await view(userId);
      requireActable(actor, target);
      const changed = await db.transaction(async (tx) => {
        const now = clock.now();
        if (!(await db.adminUsers.markDeleted(tx, userId, guardOf(actor), now))) return false;
        const ended = await sessions.revokeAll(userId, "account_deleted", undefined, tx);
        await record(actor, userId, "ACCOUNT_DELETED", client, { reason: reasonText(reason), status_before: target.user.status, status_after: "deleted", ended_sessions: String(ended) }, tx);
        revocations.userTokensInvalidated(userId, now, "deleted");
        return true;
      });
      if (!changed) {
        const why = await whyUnchanged(actor, userId, { ownerRule: true, deletedIsRefused: false });
        if (why) throw why;
      }
      return view(userId);
    },

    async restore(actor, userId, client) {
      requireActable(actor, await view(userId));
      const now = clock.now();
      const since = new Date(now.getTime() - restoreDays * DAY_MS);
      let changed: boolean;
      try {
        changed = await db.transaction(async (tx) => {
          if (!(await db.adminUsers.restore(tx, userId, guardOf(actor), since, now))) return false;
          await record(actor, userId, "ACCOUNT_RESTORED", client, { status_before: "deleted", status_after: "active" }, tx);
          return true;
        });
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError("IDENTIFIER_TAKEN", `an identifier of ${userId} was taken while it was deleted`, { cause: err });
        throw err;
      }
      if (!changed) {
        const why = await whyUnchanged(actor, userId, { ownerRule: false, deletedIsRefused: false });
        throw why ?? new AppError("NOT_RESTORABLE", `${userId} is not deleted, or was deleted before ${since.toISOString()}`);
      }
      return view(userId);
    },

    revokeSessions: endSessions,

    async resetMfa(actor, userId, reason, client) {
      requireActable(actor, await view(userId));
      const reset = await db.transaction(async (tx) => {
        const removed = await db.adminUsers.resetMfa(tx, userId, guardOf(actor), clock.now());
        if (!removed) return null;
        await record(actor, userId, "MFA_RESET", client, {
          reason: reasonText(reason), totp: String(removed.totp > 0), backup_codes: String(removed.backupCodes), code_factors: String(removed.codeFactors), ended_challenges: String(removed.challenges),
        }, tx);
        return removed;
      });
      if (!reset) {
        const why = await whyUnchanged(actor, userId, { ownerRule: false, deletedIsRefused: true });
        throw why ?? new AppError("MFA_NOT_ENABLED", `mfa not enabled for ${userId}`);
      }
      const after = await view(userId);
      await notifyMfaReset(after.user);
      return after;
    },

    async activity(userId, page) {
      await view(userId);
      return audit.list(userId, page);
    },

    async findByIdentifier(kind, value) {
      const user = await db.users.findByIdentifier(db.direct, kind, value);
      if (!user) throw new AppError("USER_NOT_FOUND", `no account with this ${kind}`);
      return view(user.id);
    },

    restoreDeadline: (deletedAt) => new Date(deletedAt.getTime() + restoreDays * DAY_MS),
  };
}
