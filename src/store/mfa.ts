// Second factors: the TOTP credential, backup codes, code factors (the account's verified email
// address or phone number), and MFA challenges (the half-finished
// sign-in between the first factor and the second). Every use of a factor is one conditional
// statement, so of two concurrent uses of the same code exactly one passes.
import { affected, rows, type Tx } from "./tx.js";
import { live } from "./users.js";
import type { ContactChannel } from "./users.js";

export interface TotpCredential {
  readonly secretSealed: Buffer;
  readonly confirmedAt: Date | null;
}

export interface TotpStore {
  find(tx: Tx, userId: string): Promise<TotpCredential | undefined>;
  /** Stores a new, unconfirmed secret, replacing any earlier one. */
  upsertPending(tx: Tx, userId: string, secretSealed: Buffer): Promise<void>;
  /** Accepts time step `step` once: false when it is not newer than the last step used. */
  advanceStep(tx: Tx, userId: string, step: number): Promise<boolean>;
  confirm(tx: Tx, userId: string, at: Date): Promise<void>;
  delete(tx: Tx, userId: string): Promise<void>;
}

export interface BackupCodeStore {
  /** Replaces the account's backup codes with `codeHashes`. */
  replace(tx: Tx, userId: string, codeHashes: readonly Buffer[]): Promise<void>;
  /** Spends an unused code once; false when it is unknown or used. */
  use(tx: Tx, userId: string, codeHashes: readonly Buffer[], at: Date): Promise<boolean>;
  countUnused(tx: Tx, userId: string): Promise<number>;
  deleteAll(tx: Tx, userId: string): Promise<void>;
}

export interface LiveChallenge {
  readonly id: string;
  readonly firstFactor: string[];
}

export interface MfaCodeFactorStore {
  /**
   * Enables the channel's code factor while the account is live and its address on that channel
   * is verified; false when it is not, or when the factor is enabled already.
   */
  enable(tx: Tx, userId: string, channel: ContactChannel, at: Date): Promise<boolean>;
  /** Disables it; false when it was not enabled. */
  disable(tx: Tx, userId: string, channel: ContactChannel): Promise<boolean>;
  /** The channels whose factor is enabled (whether or not it is usable now). */
  enabled(tx: Tx, userId: string): Promise<ContactChannel[]>;
  /** The channels whose factor counts now: enabled, and the address there is verified. */
  usable(tx: Tx, userId: string): Promise<ContactChannel[]>;
}

/**
 * The rule that makes a code factor follow its address, written once: the factor row `f` of the
 * account `u` counts only while `u` has a verified address on the factor's channel.
 */
export function codeFactorUsable(f: string, u: string): string {
  return `((${f}.channel = 'email' AND ${u}.email IS NOT NULL AND ${u}.email_verified_at IS NOT NULL)
        OR (${f}.channel = 'sms' AND ${u}.phone IS NOT NULL AND ${u}.phone_verified_at IS NOT NULL))`;
}

export interface LiveChallengeOwner {
  readonly userId: string;
  readonly firstFactor: string[];
}

export interface MfaChallengeStore {
  insert(tx: Tx, challenge: { userId: string; tokenHash: Buffer; firstFactor: readonly string[]; expiresAt: Date }): Promise<void>;
  /** The account of a live challenge (unused, unexpired, attempts left), or undefined. */
  findLiveOwner(tx: Tx, tokenHash: Buffer, now: Date, maxAttempts: number): Promise<string | undefined>;
  /** The account and first factor of a live challenge (unused, unexpired, attempts left), or undefined. */
  findLive(tx: Tx, tokenHash: Buffer, now: Date, maxAttempts: number): Promise<LiveChallengeOwner | undefined>;
  /** Counts one attempt on the live challenge; undefined when it is used, expired or exhausted. */
  countAttempt(tx: Tx, tokenHash: Buffer, userId: string, now: Date, maxAttempts: number): Promise<LiveChallenge | undefined>;
  /** Marks the challenge used; false when another request did first. */
  consume(tx: Tx, id: string, at: Date): Promise<boolean>;
  /** Deletes the account's unused challenges; returns how many. */
  deletePending(tx: Tx, userId: string): Promise<number>;
}

export const totpStore: TotpStore = {
  async find(tx, userId) {
    const [credential] = await rows<{ secret_sealed: Buffer; confirmed_at: Date | null }>(tx,
      `SELECT secret_sealed, confirmed_at FROM totp_credentials WHERE user_id = $1`,
      [userId],
    );
    return credential && { secretSealed: credential.secret_sealed, confirmedAt: credential.confirmed_at };
  },

  async upsertPending(tx, userId, secretSealed) {
    await affected(tx,
      `INSERT INTO totp_credentials (user_id, secret_sealed, confirmed_at, last_used_step) VALUES ($1, $2, NULL, NULL)
       ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, confirmed_at = NULL, last_used_step = NULL, created_at = now()`,
      [userId, secretSealed],
    );
  },

  async advanceStep(tx, userId, step) {
    // Atomic: of two requests with the same code, only one advances the step.
    const advanced = await affected(tx,
      `UPDATE totp_credentials SET last_used_step = $2 WHERE user_id = $1 AND (last_used_step IS NULL OR last_used_step < $2)`,
      [userId, step],
    );
    return advanced === 1;
  },

  async confirm(tx, userId, at) {
    await affected(tx, `UPDATE totp_credentials SET confirmed_at = $2 WHERE user_id = $1`, [userId, at]);
  },

  async delete(tx, userId) {
    await affected(tx, `DELETE FROM totp_credentials WHERE user_id = $1`, [userId]);
  },
};

export const backupCodeStore: BackupCodeStore = {
  async replace(tx, userId, codeHashes) {
    await affected(tx, `DELETE FROM backup_codes WHERE user_id = $1`, [userId]);
    for (const codeHash of codeHashes) {
      await affected(tx, `INSERT INTO backup_codes (user_id, code_hash) VALUES ($1, $2)`, [userId, codeHash]);
    }
  },

  async use(tx, userId, codeHashes, at) {
    // One statement: a code is spent only while unused, so two concurrent uses cannot both pass.
    const used = await affected(tx,
      `UPDATE backup_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = ANY($2::bytea[]) AND used_at IS NULL`,
      [userId, codeHashes, at],
    );
    return used === 1;
  },

  async countUnused(tx, userId) {
    const [row] = await rows<{ n: number }>(tx, `SELECT count(*)::int AS n FROM backup_codes WHERE user_id = $1 AND used_at IS NULL`, [userId]);
    return row!.n;
  },

  async deleteAll(tx, userId) {
    await affected(tx, `DELETE FROM backup_codes WHERE user_id = $1`, [userId]);
  },
};

export const mfaCodeFactorStore: MfaCodeFactorStore = {
  async enable(tx, userId, channel, at) {
    // One statement, conditional on what makes the factor usable (a live account with the
    // address verified), so a contact change racing it cannot leave a factor on no address.
    const enabled = await affected(tx,
      `INSERT INTO mfa_code_factors (user_id, channel, enabled_at)
       SELECT u.id, f.channel, $3 FROM users u, (SELECT $2::text AS channel) f
       WHERE u.id = $1 AND ${live("u")} AND ${codeFactorUsable("f", "u")}
       ON CONFLICT (user_id, channel) DO NOTHING RETURNING user_id`,
      [userId, channel, at],
    );
    return enabled === 1;
  },

  async disable(tx, userId, channel) {
    return (await affected(tx, `DELETE FROM mfa_code_factors WHERE user_id = $1 AND channel = $2`, [userId, channel])) === 1;
  },

  async enabled(tx, userId) {
    const found = await rows<{ channel: ContactChannel }>(tx, `SELECT channel FROM mfa_code_factors WHERE user_id = $1 ORDER BY channel`, [userId]);
    return found.map((r) => r.channel);
  },

  async usable(tx, userId) {
    const found = await rows<{ channel: ContactChannel }>(tx,
      `SELECT f.channel FROM mfa_code_factors f JOIN users u ON u.id = f.user_id
       WHERE f.user_id = $1 AND ${codeFactorUsable("f", "u")} ORDER BY f.channel`,
      [userId],
    );
    return found.map((r) => r.channel);
  },
};

export const mfaChallengeStore: MfaChallengeStore = {
  async insert(tx, challenge) {
    await affected(tx,
      `INSERT INTO mfa_challenges (user_id, token_hash, first_factor, expires_at) VALUES ($1, $2, $3, $4)`,
      [challenge.userId, challenge.tokenHash, [...challenge.firstFactor], challenge.expiresAt],
    );
  },

  async findLiveOwner(tx, tokenHash, now, maxAttempts) {
    const [found] = await rows<{ user_id: string }>(tx,
      `SELECT user_id FROM mfa_challenges WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3`,
      [tokenHash, now, maxAttempts],
    );
    return found?.user_id;
  },

  async findLive(tx, tokenHash, now, maxAttempts) {
    const [found] = await rows<{ user_id: string; first_factor: string[] }>(tx,
      `SELECT user_id, first_factor FROM mfa_challenges WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3`,
      [tokenHash, now, maxAttempts],
    );
    return found && { userId: found.user_id, firstFactor: found.first_factor };
  },

  async countAttempt(tx, tokenHash, userId, now, maxAttempts) {
    // The attempt is counted in its own statement (committed whatever the code), conditional
    // on the challenge still being live, so a wrong code uses one up even under concurrency.
    const [challenge] = await rows<{ id: string; first_factor: string[] }>(tx,
      `UPDATE mfa_challenges SET attempts = attempts + 1
       WHERE token_hash = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3 AND attempts < $4
       RETURNING id, first_factor`,
      [tokenHash, userId, now, maxAttempts],
    );
    return challenge && { id: challenge.id, firstFactor: challenge.first_factor };
  },

  async consume(tx, id, at) {
    // Conditional on the challenge being unused: of two concurrent right codes one signs in.
    const consumed = await affected(tx, `UPDATE mfa_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL`, [id, at]);
    return consumed === 1;
  },

  deletePending(tx, userId) {
    return affected(tx, `DELETE FROM mfa_challenges WHERE user_id = $1 AND used_at IS NULL`, [userId]);
  },
};
