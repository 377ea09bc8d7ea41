// Administration of accounts (AdminService): search, and the administrative state changes. Every
// change is ONE conditional statement; its conditions carry the rules an administrator is bound
// by, so that no read-then-write in JavaScript can be raced:
//   - the actor may act only on accounts whose role is among `guard.actable` (or not in ROLES at
//     all: such a role ranks lowest, src/domain/admin/roles.ts);
//   - a change that takes the highest role from its last active holder (demotion, disabling,
//     deletion) happens only while another active holder exists. Every such statement first locks
//     the active holders in id order (the `owners` CTE, FOR UPDATE): of two concurrent demotions of
//     the last two owners, the second waits for the first, then sees its result and refuses.
// A statement that changes nothing answers null/false; the domain then reads the account to say why.
import { UserEntity, type UserRow, type UserStatus } from "../db/entities/user.js";
import { guarded, managerOf, rows, type Tx } from "./tx.js";
import { live } from "./users.js";

/** What an actor may touch, passed to every statement. */
export interface AdminGuard {
  /** The roles of ROLES the actor may act on (their own and below). */
  readonly actable: readonly string[];
  /** Every role of ROLES: a stored role outside it ranks lowest, so any actor may act on it. */
  readonly known: readonly string[];
  /** The highest role, which must keep an active holder. */
  readonly highest: string;
}

/** An account as AdminService shows it. */
export interface AdminUserRow {
  readonly user: UserRow;
  readonly activeSessions: number;
  /** When the account's newest session started (a sign-in); null when it never signed in. */
  readonly lastLoginAt: Date | null;
}

/** Which accounts ListUsers returns; every set field must match. */
export interface UserFilter {
  /** Canonical (lower-case) email prefix. */
  readonly emailPrefix?: string;
  /** Lower-case username prefix. */
  readonly usernamePrefix?: string;
  readonly phonePrefix?: string;
  readonly role?: string;
  /** `undefined`: active and disabled (not deleted). */
  readonly status?: UserStatus;
  readonly createdAtOrAfter?: Date;
  readonly createdBefore?: Date;
}

/** What ResetUserMfa removed. */
export interface MfaReset {
  readonly totp: number;
  readonly backupCodes: number;
  /** Email and SMS code factors removed. */
  readonly codeFactors: number;
  readonly challenges: number;
}

export interface AdminUserStore {
  /** Accounts matching `filter`, oldest first (created_at, id), at most `limit`, after the account `afterId`. */
  list(tx: Tx, filter: UserFilter, limit: number, afterId?: string): Promise<AdminUserRow[]>;
  /** One account, whatever its state; null when there is none. */
  view(tx: Tx, id: string): Promise<AdminUserRow | null>;
  /** Sets the role of a not-deleted account; the role before, or null when nothing changed. */
  setRole(tx: Tx, id: string, role: string, guard: AdminGuard, now: Date): Promise<{ readonly before: string } | null>;
  /** active -> disabled; older access tokens stop verifying. False when nothing changed. */
  disable(tx: Tx, id: string, guard: AdminGuard, now: Date): Promise<boolean>;
  /** disabled -> active. False when nothing changed. */
  enable(tx: Tx, id: string, guard: AdminGuard, now: Date): Promise<boolean>;
  /** The soft delete of DeleteAccount (older access tokens stop verifying); false when nothing changed. */
  markDeleted(tx: Tx, id: string, guard: AdminGuard, now: Date): Promise<boolean>;
  /**
   * Deleted (at or after `deletedSince`) -> active; false when nothing changed. UniqueViolationError
   * when another account took one of its identifiers meanwhile.
   */
  restore(tx: Tx, id: string, guard: AdminGuard, deletedSince: Date, now: Date): Promise<boolean>;
  /** Ends every session of the account; the ended sessions' ids, or null when the guard refused. */
  revokeSessions(tx: Tx, id: string, guard: AdminGuard, reason: string, now: Date): Promise<string[] | null>;
  /** Removes the TOTP credential, backup codes and pending MFA challenges; null when nothing changed. */
  resetMfa(tx: Tx, id: string, guard: AdminGuard, now: Date): Promise<MfaReset | null>;
}

/** SQL: the account `alias` is one the actor may act on ($a: actable roles, $k: every role). */
function actable(alias: string, actableParam: string, knownParam: string): string {
  return `(${alias}.role = ANY(${actableParam}::text[]) OR NOT (${alias}.role = ANY(${knownParam}::text[])))`;
}

/** The active holders of the highest role ($h), locked in id order (see the header). */
function ownersCte(highestParam: string): string {
  return `owners AS (SELECT id FROM users WHERE role = ${highestParam} AND ${live()} ORDER BY id FOR UPDATE)`;
}

/** SQL: the change leaves the highest role ($h) an active holder besides `alias`. */
function keepsAnOwner(alias: string, highestParam: string): string {
  return `(${alias}.role <> ${highestParam} OR NOT (${live(alias)}) OR EXISTS (SELECT 1 FROM owners o WHERE o.id <> ${alias}.id))`;
}

function prefix(column: string, param: string): string {
  // left() rather than LIKE: the prefix needs no escaping of % and _.
  return `left(${column}, length(${param})) = ${param}`;
}

async function withCounts(tx: Tx, users: UserRow[]): Promise<AdminUserRow[]> {
  if (users.length === 0) return [];
  const counts = await rows<{ user_id: string; active: number; last_login: Date | null }>(tx,
    `SELECT user_id, count(*) FILTER (WHERE revoked_at IS NULL AND absolute_expires_at > now())::int AS active, max(created_at) AS last_login
     FROM sessions WHERE user_id = ANY($1::uuid[]) GROUP BY user_id`,
    [users.map((u) => u.id)],
  );
  const byUser = new Map(counts.map((c) => [c.user_id, c]));
  return users.map((user) => ({ user, activeSessions: byUser.get(user.id)?.active ?? 0, lastLoginAt: byUser.get(user.id)?.last_login ?? null }));
}

export const adminUserStore: AdminUserStore = {
  async list(tx, filter, limit, afterId) {
    const query = managerOf(tx).createQueryBuilder(UserEntity, "u").orderBy("u.created_at", "ASC").addOrderBy("u.id", "ASC").limit(limit);
    if (filter.status === undefined) query.andWhere("u.deleted_at IS NULL");
    else if (filter.status === "active") query.andWhere(live("u"));
    else if (filter.status === "disabled") query.andWhere("u.status = 'disabled' AND u.deleted_at IS NULL");
    else query.andWhere("u.deleted_at IS NOT NULL");
    if (filter.emailPrefix !== undefined) query.andWhere(prefix("u.email", ":emailPrefix"), { emailPrefix: filter.emailPrefix });
    if (filter.usernamePrefix !== undefined) query.andWhere(prefix("lower(u.username)", ":usernamePrefix"), { usernamePrefix: filter.usernamePrefix });
    if (filter.phonePrefix !== undefined) query.andWhere(prefix("u.phone", ":phonePrefix"), { phonePrefix: filter.phonePrefix });
    if (filter.role !== undefined) query.andWhere("u.role = :role", { role: filter.role });
    if (filter.createdAtOrAfter !== undefined) query.andWhere("u.created_at >= :after", { after: filter.createdAtOrAfter });
    if (filter.createdBefore !== undefined) query.andWhere("u.created_at < :before", { before: filter.createdBefore });
    // Compared with the cursor row itself: created_at has microseconds, a page token milliseconds.
    if (afterId !== undefined) query.andWhere("(u.created_at, u.id) > (SELECT c.created_at, c.id FROM users c WHERE c.id = :afterId)", { afterId });
    return withCounts(tx, await guarded(() => query.getMany()));
  },

  async view(tx, id) {
    const user = await guarded(() => managerOf(tx).findOneBy(UserEntity, { id }));
    if (!user) return null;
    const [row] = await withCounts(tx, [user]);
    return row ?? null;
  },

  async setRole(tx, id, role, guard, now) {
    // Promoting to the highest role never needs the owner check; demoting its holder does.
    const [row] = await rows<{ before: string }>(tx,
      `WITH ${ownersCte("$5")}
       UPDATE users u SET role = $2, updated_at = $6
       FROM users earlier
       WHERE u.id = $1 AND earlier.id = u.id AND u.deleted_at IS NULL AND u.role <> $2
         AND ${actable("u", "$3", "$4")}
         AND ($2::text = $5::text OR ${keepsAnOwner("u", "$5")})
       RETURNING earlier.role AS before`,
      [id, role, guard.actable, guard.known, guard.highest, now],
    );
    return row ? { before: row.before } : null;
  },

  async disable(tx, id, guard, now) {
    // tokens_valid_after and status both feed the revocation triggers: every instance refuses
    // the account's tokens (USER_DISABLED) on the NOTIFY of this commit.
    const changed = await rows(tx,
      `WITH ${ownersCte("$4")}
       UPDATE users u SET status = 'disabled', disabled_at = $5, tokens_valid_after = $5, updated_at = $5
       WHERE u.id = $1 AND ${live("u")} AND ${actable("u", "$2", "$3")} AND ${keepsAnOwner("u", "$4")}
       RETURNING u.id`,
      [id, guard.actable, guard.known, guard.highest, now],
    );
    return changed.length === 1;
  },

  async enable(tx, id, guard, now) {
    // tokens_valid_after stays: what disabling ended stays ended.
    const changed = await rows(tx,
      `UPDATE users u SET status = 'active', disabled_at = NULL, updated_at = $4
       WHERE u.id = $1 AND u.status = 'disabled' AND u.deleted_at IS NULL AND ${actable("u", "$2", "$3")}
       RETURNING u.id`,
      [id, guard.actable, guard.known, now],
    );
    return changed.length === 1;
  },

  async markDeleted(tx, id, guard, now) {
    // The same row state as users.markDeleted (DeleteAccount), conditional on the admin rules.
    const changed = await rows(tx,
      `WITH ${ownersCte("$4")}
       UPDATE users u SET status = 'deleted', deleted_at = $5, tokens_valid_after = $5, updated_at = $5
       WHERE u.id = $1 AND u.deleted_at IS NULL AND ${actable("u", "$2", "$3")} AND ${keepsAnOwner("u", "$4")}
       RETURNING u.id`,
      [id, guard.actable, guard.known, guard.highest, now],
    );
    return changed.length === 1;
  },

  async restore(tx, id, guard, deletedSince, now) {
    // The unique indexes on identifiers cover not-deleted accounts only: clearing deleted_at
    // fails (UniqueViolationError) when another account took the email, username or phone.
    // tokens_valid_after stays: tokens from before the deletion stay dead.
    const changed = await rows(tx,
      `UPDATE users u SET status = 'active', deleted_at = NULL, disabled_at = NULL, updated_at = $5
       WHERE u.id = $1 AND u.deleted_at IS NOT NULL AND u.deleted_at >= $4 AND ${actable("u", "$2", "$3")}
       RETURNING u.id`,
      [id, guard.actable, guard.known, deletedSince, now],
    );
    return changed.length === 1;
  },

  async revokeSessions(tx, id, guard, reason, now) {
    // Conditional on the account's role in the same statement; the sessions trigger NOTIFYs
    // every instance of each revoked session.
    const [row] = await rows<{ allowed: boolean; ids: string[] }>(tx,
      `WITH target AS (SELECT u.id FROM users u WHERE u.id = $1 AND ${actable("u", "$2", "$3")} FOR UPDATE),
       revoked AS (
         UPDATE sessions s SET revoked_at = $4, revoke_reason = $5
         WHERE s.user_id IN (SELECT id FROM target) AND s.revoked_at IS NULL
         RETURNING s.id
       )
       SELECT EXISTS (SELECT 1 FROM target) AS allowed, coalesce((SELECT array_agg(id::text) FROM revoked), '{}'::text[]) AS ids`,
      [id, guard.actable, guard.known, now, reason],
    );
    return row?.allowed ? row.ids : null;
  },

  async resetMfa(tx, id, guard, now) {
    const [row] = await rows<{ reset: number; totp: number; backup_codes: number; code_factors: number; challenges: number }>(tx,
      `WITH target AS (
         UPDATE users u SET mfa_enabled_at = NULL, updated_at = $4
         WHERE u.id = $1 AND u.deleted_at IS NULL AND ${actable("u", "$2", "$3")}
           AND (u.mfa_enabled_at IS NOT NULL OR EXISTS (SELECT 1 FROM totp_credentials t WHERE t.user_id = u.id)
             OR EXISTS (SELECT 1 FROM mfa_code_factors f WHERE f.user_id = u.id))
         RETURNING u.id
       ), totp AS (
         DELETE FROM totp_credentials WHERE user_id IN (SELECT id FROM target) RETURNING 1
       ), backup AS (
         DELETE FROM backup_codes WHERE user_id IN (SELECT id FROM target) AND used_at IS NULL RETURNING 1
       ), spent AS (
         DELETE FROM backup_codes WHERE user_id IN (SELECT id FROM target) AND used_at IS NOT NULL
       ), code_factors AS (
         -- Email and SMS codes as a second factor (issue 16) go with the rest.
         DELETE FROM mfa_code_factors WHERE user_id IN (SELECT id FROM target) RETURNING 1
       ), challenges AS (
         -- A first factor proven before the reset must not complete against the old factor.
         DELETE FROM mfa_challenges WHERE user_id IN (SELECT id FROM target) AND used_at IS NULL RETURNING 1
       )
       SELECT (SELECT count(*) FROM target)::int AS reset, (SELECT count(*) FROM totp)::int AS totp,
         (SELECT count(*) FROM backup)::int AS backup_codes, (SELECT count(*) FROM code_factors)::int AS code_factors,
         (SELECT count(*) FROM challenges)::int AS challenges`,
      [id, guard.actable, guard.known, now],
    );
    return row && row.reset > 0 ? { totp: row.totp, backupCodes: row.backup_codes, codeFactors: row.code_factors, challenges: row.challenges } : null;
  },
};
