// One-time codes, stored only as an HMAC. Spending a code and counting a wrong attempt are one
// conditional UPDATE, so of several concurrent checks of the right code exactly one succeeds.
import { affected, rows, type Tx } from "./tx.js";
import type { ContactChannel } from "./users.js";

/** `mfa`: a code answering an MFA challenge (MfaService.SendMfaCode), bound to the challenge. */
export type OtpPurpose = "login" | "verify_contact" | "password_reset" | "change_contact" | "mfa";

/** Where a code went and what for: the primary key of otp_codes. */
export interface OtpCodeKey {
  readonly channel: ContactChannel;
  /** The canonical address or E.164 number. */
  readonly destination: string;
  readonly purpose: OtpPurpose;
}

export interface ConsumedCode {
  /** The code was right and is now spent. */
  readonly ok: boolean;
  readonly attempts: number;
  readonly userId: string | null;
}

export interface OtpCodeStore {
  /** Stores a code, replacing any earlier one for the same key. */
  upsert(tx: Tx, key: OtpCodeKey, code: { userId: string | null; codeHash: Buffer; createdAt: Date; expiresAt: Date }): Promise<void>;
  /** Deletes codes that expired before `before`. */
  sweep(tx: Tx, before: Date): Promise<void>;
  /** Spends the code when `codeHash` matches, else counts an attempt; undefined when no live code is left to check. */
  consume(tx: Tx, key: OtpCodeKey, codeHashes: readonly Buffer[], now: Date, maxAttempts: number): Promise<ConsumedCode | undefined>;
  /** Why an unspent code could not be checked; undefined when there is none. */
  state(tx: Tx, key: OtpCodeKey, now: Date, maxAttempts: number): Promise<{ expired: boolean; exhausted: boolean } | undefined>;
  /** Deletes the account's outstanding password-reset codes (sent to its current contacts); returns how many. */
  deletePendingResetCodes(tx: Tx, userId: string): Promise<number>;
}

export const otpCodeStore: OtpCodeStore = {
  async upsert(tx, key, code) {
    await affected(tx,
      `INSERT INTO otp_codes (channel, destination, purpose, user_id, code_hash, attempts, created_at, expires_at, consumed_at)
       VALUES ($1, $2, $3, $4, $5, 0, $6, $7, NULL)
       ON CONFLICT (channel, destination, purpose) DO UPDATE SET
         user_id = EXCLUDED.user_id, code_hash = EXCLUDED.code_hash, attempts = 0,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, consumed_at = NULL`,
      [key.channel, key.destination, key.purpose, code.userId, code.codeHash, code.createdAt, code.expiresAt],
    );
  },

  async sweep(tx, before) {
    await affected(tx, `DELETE FROM otp_codes WHERE expires_at < $1`, [before]);
  },

  async consume(tx, key, codeHashes, now, maxAttempts) {
    // One statement: the right code is spent, a wrong one costs an attempt, and a spent, expired
    // or exhausted code matches nothing; the row lock orders concurrent checks.
    const [row] = await rows<{ ok: boolean; attempts: number; user_id: string | null }>(tx,
      `UPDATE otp_codes SET
         attempts = attempts + CASE WHEN code_hash = ANY($4::bytea[]) THEN 0 ELSE 1 END,
         consumed_at = CASE WHEN code_hash = ANY($4::bytea[]) THEN $5::timestamptz END
       WHERE channel = $1 AND destination = $2 AND purpose = $3
         AND consumed_at IS NULL AND expires_at > $5 AND attempts < $6
       RETURNING consumed_at IS NOT NULL AS ok, attempts, user_id`,
      [key.channel, key.destination, key.purpose, codeHashes, now, maxAttempts],
    );
    return row && { ok: row.ok, attempts: row.attempts, userId: row.user_id };
  },

  async state(tx, key, now, maxAttempts) {
    const [state] = await rows<{ expired: boolean; exhausted: boolean }>(tx,
      `SELECT expires_at <= $4 AS expired, attempts >= $5 AS exhausted FROM otp_codes
       WHERE channel = $1 AND destination = $2 AND purpose = $3 AND consumed_at IS NULL`,
      [key.channel, key.destination, key.purpose, now, maxAttempts],
    );
    return state;
  },

  deletePendingResetCodes(tx, userId) {
    // Reset codes are keyed by destination (the canonical email address, E.164 number), not by account.
    return affected(tx,
      `DELETE FROM otp_codes o USING users u
       WHERE u.id = $1 AND o.purpose = 'password_reset' AND o.consumed_at IS NULL
         AND ((o.channel = 'email' AND o.destination = u.email) OR (o.channel = 'sms' AND o.destination = u.phone))`,
      [userId],
    );
  },
};
