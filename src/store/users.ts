// The users aggregate: accounts, their identifiers and verified contacts, password hash, status.
// The live-user rule is written here once (live() in SQL, isLive for a row already read).
import { UserEntity, type UserRow, type UserStatus } from "../db/entities/user.js";
import { guarded, managerOf, rows, affected, type Tx } from "./tx.js";

export type { UserRow, UserStatus };

/**
 * A live account: active and not deleted. Every statement that needs one says `${live("u")}`
 * (`alias` names the users row in that statement).
 */
export function live(alias?: string): string {
  const at = alias === undefined ? "" : `${alias}.`;
  return `${at}status = 'active' AND ${at}deleted_at IS NULL`;
}

/** The same rule for a row already read. */
export function isLive(user: Pick<UserRow, "status" | "deletedAt">): boolean {
  return user.status === "active" && user.deletedAt === null;
}

export type IdentifierKind = "email" | "username" | "phone";
/** The channels a contact (and its verified column) belongs to. */
export type ContactChannel = "email" | "sms";

/** The attributes of a profile (validated by src/domain/accounts/profile.ts). */
export interface ProfileValues {
  readonly displayName: string;
  readonly username: string | null;
  readonly givenName: string;
  readonly familyName: string;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string | null;
  /** `YYYY-MM-DD`. */
  readonly birthDate: string | null;
}

export interface NewUser extends Pick<ProfileValues, "displayName" | "username">, Partial<Omit<ProfileValues, "displayName" | "username">> {
  readonly email: string | null;
  readonly phone: string | null;
  readonly passwordHash: string;
  /** The account's role; the store's default role (DEFAULT_ROLE, see withDefaultRole) when left out. */
  readonly role?: string;
}

/** Columns of each profile value; the only names UpdateProfile can write. */
const PROFILE_COLUMNS: Readonly<Record<keyof ProfileValues, string>> = {
  displayName: "display_name",
  username: "username",
  givenName: "given_name",
  familyName: "family_name",
  country: "country",
  birthDate: "birth_date",
};

/** What a claim of an unverified contact discarded (see claimUnverifiedContact). */
export interface ClaimedContact {
  readonly hadPassword: boolean;
  readonly hadOtherContact: boolean;
  readonly totp: number;
  readonly pendingTotp: number;
  readonly backupCodes: number;
}

export interface UserStore {
  /** The live-user rule for a row already read (the SQL form is live()). */
  isLive(user: Pick<UserRow, "status" | "deletedAt">): boolean;
  /** The live account `id`, or null. */
  findLive(tx: Tx, id: string): Promise<UserRow | null>;
  /** The account `id` as it is now, whatever its status. */
  get(tx: Tx, id: string): Promise<UserRow>;
  /**
   * The not-deleted account with this identifier (canonical, identifiers.ts), live or disabled:
   * the caller decides with isLive, so a disabled account is told apart from an unknown one.
   */
  findByIdentifier(tx: Tx, kind: IdentifierKind, value: string): Promise<UserRow | null>;
  /**
   * The account a password login with this identifier is about: the not-deleted one (live or
   * disabled) when there is one, else the most recently deleted one. A deleted account frees its
   * identifiers (the unique indexes cover only accounts not deleted), so several deleted accounts
   * and one live one may share an identifier; the live one always wins.
   */
  findForLogin(tx: Tx, kind: IdentifierKind, value: string): Promise<UserRow | null>;
  /** Creates an account; UniqueViolationError when an identifier is taken. */
  insert(tx: Tx, user: NewUser): Promise<UserRow>;
  /** Creates the account of a verified contact (with `role`, by default the store's); null when a live account has it already. */
  insertForContact(tx: Tx, channel: ContactChannel, address: string, now: Date, role?: string): Promise<UserRow | null>;
  /** Replaces the hash with a rehash of the same password (parameters changed). */
  rehashPassword(tx: Tx, id: string, passwordHash: string): Promise<void>;
  /** Sets a new password only while the stored hash is still `expectedHash`; false otherwise. */
  changePassword(tx: Tx, id: string, passwordHash: string, expectedHash: string, now: Date): Promise<boolean>;
  /** Sets a new password after a reset; older access tokens stop verifying. */
  resetPassword(tx: Tx, id: string, passwordHash: string, now: Date): Promise<void>;
  /** Soft delete; older access tokens stop verifying. */
  /**
   * Soft-deletes the account (DeleteAccount); false, changing nothing, when it is the last live
   * holder of `highestRole` (the role administration needs: AdminService's LAST_OWNER rule).
   */
  markDeleted(tx: Tx, id: string, now: Date, highestRole: string): Promise<boolean>;
  /** Marks the account's own contact `key` verified (first time only); false when it is not theirs or the account is not live. */
  markContactVerified(tx: Tx, id: string, channel: ContactChannel, key: string, now: Date): Promise<boolean>;
  claimUnverifiedContact(tx: Tx, id: string, channel: ContactChannel, now: Date): Promise<ClaimedContact | null>;
  setMfaEnabledAt(tx: Tx, id: string, at: Date | null): Promise<void>;
  /**
   * Sets the given profile values of the live account `id`; null when it is not live.
   * UniqueViolationError when the username is taken.
   */
  updateProfile(tx: Tx, id: string, changes: Partial<ProfileValues>, now: Date): Promise<UserRow | null>;
  /**
   * Replaces (or adds) the live account's email address or phone number with `address`, verified
   * as of `now`; returns what it had before (null: none), or undefined when the account is not
   * live. UniqueViolationError when another account has the address.
   */
  changeContact(tx: Tx, id: string, channel: ContactChannel, address: string, now: Date): Promise<{ previous: string | null } | undefined>;
}

/** The column that says the contact was proven by a code. */
function verifiedColumn(channel: ContactChannel): "email_verified_at" | "phone_verified_at" {
  return channel === "email" ? "email_verified_at" : "phone_verified_at";
}

/**
 * SQL matching a users row's email to the canonical address `param` by equality (never lower():
 * PostgreSQL's lower() is Unicode-aware, as toLowerCase() is). The lower() term adds nothing to
 * what matches; it lets the planner use the unique index on lower(email).
 */
function emailEquals(column: string, param: string): string {
  return `lower(${column}) = lower(${param}) AND ${column} = ${param}`;
}

export const userStore: UserStore = {
  isLive,

  findLive: (tx, id) =>
    guarded(() => managerOf(tx).createQueryBuilder(UserEntity, "u").where(`u.id = :id AND ${live("u")}`, { id }).getOne()),

  get: (tx, id) => guarded(() => managerOf(tx).findOneByOrFail(UserEntity, { id })),

  findByIdentifier(tx, kind, value) {
    const query = managerOf(tx).createQueryBuilder(UserEntity, "u").where("u.deleted_at IS NULL");
    // Values are canonical (identifiers.ts), and so is what is stored: emails match exactly.
    if (kind === "email") return guarded(() => query.andWhere(emailEquals("u.email", ":value"), { value }).getOne());
    return guarded(() =>
      (kind === "phone" ? query.andWhere("u.phone = :value", { value }) : query.andWhere(`lower(u.username) = lower(:value)`, { value })).getOne(),
    );
  },

  async findForLogin(tx, kind, value) {
    // Not deleted first (at most one, by the unique indexes): the path of every login, as before.
    const current = await userStore.findByIdentifier(tx, kind, value);
    if (current) return current;
    // Then the most recently deleted (users_deleted_*_idx). Two statements only for an
    // identifier no current account has; the password hash that follows dwarfs the difference.
    const match = kind === "email" ? emailEquals("email", "$1") : kind === "phone" ? "phone = $1" : "lower(username) = lower($1)";
    const [newest] = await rows<{ id: string }>(tx,
      `SELECT id FROM users WHERE ${match} AND deleted_at IS NOT NULL ORDER BY deleted_at DESC, id LIMIT 1`,
      [value],
    );
    return newest ? userStore.get(tx, newest.id) : null;
  },

  insert: (tx, user) =>
    guarded(() => {
      const manager = managerOf(tx);
      return manager.save(UserEntity, manager.create(UserEntity, { ...user, role: user.role ?? "user", status: "active" }));
    }),

  async insertForContact(tx, channel, address, now, role = "user") {
    const column = channel === "email" ? "email" : "phone";
    const conflict = channel === "email" ? "(lower(email)) WHERE deleted_at IS NULL AND email IS NOT NULL" : "(phone) WHERE deleted_at IS NULL AND phone IS NOT NULL";
    const [inserted] = await rows<{ id: string }>(tx,
      `INSERT INTO users (${column}, ${verifiedColumn(channel)}, role, status, created_at, updated_at)
       VALUES ($1, $2, $3, 'active', $2, $2)
       ON CONFLICT ${conflict} DO NOTHING RETURNING id`,
      [address, now, role],
    );
    return inserted ? userStore.get(tx, inserted.id) : null;
  },

  async rehashPassword(tx, id, passwordHash) {
    await guarded(() => managerOf(tx).update(UserEntity, { id }, { passwordHash }));
  },

  async changePassword(tx, id, passwordHash, expectedHash, now) {
    // Conditional on the hash the current password was checked against: of concurrent changes
    // with the same current password exactly one wins; the others find it changed and fail.
    const changed = await affected(tx,
      `UPDATE users SET password_hash = $2, updated_at = $4 WHERE id = $1 AND password_hash = $3 AND ${live()} RETURNING id`,
      [id, passwordHash, expectedHash, now],
    );
    return changed === 1;
  },

  async resetPassword(tx, id, passwordHash, now) {
    await affected(tx, `UPDATE users SET password_hash = $2, tokens_valid_after = $3, updated_at = $3 WHERE id = $1`, [id, passwordHash, now]);
  },

  async markDeleted(tx, id, now, highestRole) {
    // The live holders of the highest role are locked in id order, as AdminService's statements
    // lock them (admin-users.ts): two last owners deleting themselves at once cannot both succeed.
    const changed = await rows(tx,
      `WITH owners AS (SELECT id FROM users WHERE role = $3 AND ${live()} ORDER BY id FOR UPDATE)
       UPDATE users u SET status = 'deleted', deleted_at = $2, tokens_valid_after = $2, updated_at = $2
       WHERE u.id = $1 AND u.deleted_at IS NULL
         AND (u.role <> $3 OR NOT (${live("u")}) OR EXISTS (SELECT 1 FROM owners o WHERE o.id <> u.id))
       RETURNING u.id`,
      [id, now, highestRole],
    );
    return changed.length === 1;
  },

  async markContactVerified(tx, id, channel, key, now) {
    const column = verifiedColumn(channel);
    const match = channel === "email" ? "email = $2" : "phone = $2";
    const updated = await affected(tx,
      `UPDATE users SET ${column} = coalesce(${column}, $3), updated_at = $3
       WHERE id = $1 AND ${match} AND ${live()} RETURNING id`,
      [id, key, now],
    );
    return updated > 0;
  },

  /**
   * Marks the contact of `channel` verified on the account when it was not, and discards every
   * credential that whoever put the unverified contact there may have set up (account
   * pre-hijacking; see src/domain/accounts/credential-changes.ts): the password, the TOTP
   * credential, the backup codes, MFA itself (code factors too), and the account's other contact (with the codes
   * already sent to it). Older access tokens stop verifying (`tokens_valid_after`).
   * Returns null when the contact was verified already, and nothing changes.
   *
   * One statement: the claim is conditional on the contact still being unverified (of two
   * concurrent claims one does it), and the credentials go only with the claim that did.
   */
  async claimUnverifiedContact(tx, id, channel, now) {
    const column = verifiedColumn(channel);
    const other = channel === "email" ? "phone" : "email";
    const [row] = await rows<{ had_password: boolean; had_other: boolean; totp: number; pending_totp: number; backup_codes: number }>(tx,
      `WITH claimed AS (
         UPDATE users u SET ${column} = $2, password_hash = NULL, mfa_enabled_at = NULL, tokens_valid_after = $2, updated_at = $2,
           ${other} = NULL, ${other}_verified_at = NULL
         FROM users earlier
         WHERE u.id = $1 AND earlier.id = u.id AND u.${column} IS NULL
         RETURNING u.id, earlier.password_hash IS NOT NULL AS had_password, earlier.${other} IS NOT NULL AS had_other, earlier.${other} AS other_address
       ), totp AS (
         DELETE FROM totp_credentials WHERE user_id IN (SELECT id FROM claimed) RETURNING confirmed_at
       ), other_codes AS (
         -- Codes already sent to the removed contact die with it (endPendingProofs no longer sees it).
         DELETE FROM otp_codes WHERE channel = '${channel === "email" ? "sms" : "email"}' AND consumed_at IS NULL
           AND destination IN (SELECT other_address FROM claimed)
       ), backup AS (
         DELETE FROM backup_codes WHERE user_id IN (SELECT id FROM claimed) RETURNING used_at
       ), code_factors AS (
         -- Code factors go with the other contact and MFA: one set up by the squatter must not
         -- come back to life on an address the owner adds later.
         DELETE FROM mfa_code_factors WHERE user_id IN (SELECT id FROM claimed)
       ), federated AS (
         -- Provider identities too: a provider that does not verify addresses can create an
         -- account with someone else's (issue 17); its owner claiming it must shut that door.
         DELETE FROM federated_identities WHERE user_id IN (SELECT id FROM claimed)
       ), passkeys_gone AS (
         -- And passkeys, for the same reason: one registered by the squatter signs in alone.
         DELETE FROM passkeys WHERE user_id IN (SELECT id FROM claimed)
       )
       SELECT had_password, had_other,
         (SELECT count(*) FROM totp WHERE confirmed_at IS NOT NULL)::int AS totp,
         (SELECT count(*) FROM totp WHERE confirmed_at IS NULL)::int AS pending_totp,
         (SELECT count(*) FROM backup WHERE used_at IS NULL)::int AS backup_codes
       FROM claimed`,
      [id, now],
    );
    if (!row) return null;
    return { hadPassword: row.had_password, hadOtherContact: row.had_other, totp: row.totp, pendingTotp: row.pending_totp, backupCodes: row.backup_codes };
  },

  async setMfaEnabledAt(tx, id, at) {
    await guarded(() => managerOf(tx).update(UserEntity, { id }, { mfaEnabledAt: at }));
  },

  async updateProfile(tx, id, changes, now) {
    const entries = (Object.keys(PROFILE_COLUMNS) as Array<keyof ProfileValues>).filter((key) => changes[key] !== undefined);
    const sets = entries.map((key, i) => `${PROFILE_COLUMNS[key]} = $${i + 3}`);
    // One statement, conditional on the account being live; a username another account holds
    // fails on the unique index (users_username_key), whatever committed in between.
    const [row] = await rows<{ id: string }>(tx,
      `UPDATE users SET ${[...sets, "updated_at = $2"].join(", ")} WHERE id = $1 AND ${live()} RETURNING id`,
      [id, now, ...entries.map((key) => changes[key])],
    );
    return row ? userStore.get(tx, id) : null;
  },

  async changeContact(tx, id, channel, address, now) {
    const column = channel === "email" ? "email" : "phone";
    // One statement: the address and its verified flag change together, only on a live account;
    // an address another account took meanwhile fails on the unique index (users_email_key,
    // users_phone_key), so two accounts can never both hold it.
    const [row] = await rows<{ previous: string | null }>(tx,
      `UPDATE users u SET ${column} = $2, ${verifiedColumn(channel)} = $3, updated_at = $3
       FROM users earlier
       WHERE u.id = $1 AND earlier.id = u.id AND ${live("u")}
       RETURNING earlier.${column} AS previous`,
      [id, address, now],
    );
    return row && { previous: row.previous };
  },
};

/**
 * `store` giving new accounts `defaultRole` (DEFAULT_ROLE) unless told otherwise: sign-up and
 * sign-up by code create accounts without naming a role.
 */
export function withDefaultRole(store: UserStore, defaultRole: string): UserStore {
  return {
    ...store,
    insert: (tx, user) => store.insert(tx, { ...user, role: user.role ?? defaultRole }),
    insertForContact: (tx, channel, address, now, role = defaultRole) => store.insertForContact(tx, channel, address, now, role),
  };
}
