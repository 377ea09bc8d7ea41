// One-time codes: 6 digits from the CSPRNG, stored only as an HMAC keyed with a secret derived
// from the key-encryption key, single use, a few wrong attempts at most. Spending a code and
// counting a wrong attempt are one conditional UPDATE each, so of several concurrent checks of
// the right code exactly one succeeds, on any instance.
import { createHmac, randomInt } from "node:crypto";
import { returnedRows } from "../../db/query.js";
import { deriveKey } from "../crypto.js";
import type { DataSource, EntityManager } from "typeorm";
import type { Clock } from "../clock.js";
import type { Contact } from "../accounts/contacts.js";

export type OtpPurpose = "login" | "verify_contact" | "password_reset";

export const OTP_LENGTH = 6;
/** Wrong attempts after which a code is dead. */
export const OTP_MAX_ATTEMPTS = 5;
const CODE_PATTERN = /^\d{6}$/;
/** Spent and expired codes are kept a day (to answer OTP_EXPIRED), then swept. */
const KEEP_AFTER_EXPIRY_MS = 86_400_000;
const SWEEP_EVERY = 500;

export type OtpFailure = "OTP_INVALID" | "OTP_EXPIRED" | "OTP_ATTEMPTS_EXHAUSTED";

export type ConsumeResult =
  | { readonly ok: true; readonly userId: string | null }
  | { readonly ok: false; readonly reason: OtpFailure };

export interface OtpCodes {
  /** A fresh random code (not yet stored). */
  generate(): string;
  /** Stores `code` for the contact and purpose, replacing any earlier one; returns its expiry. */
  store(contact: Contact, purpose: OtpPurpose, code: string, userId: string | null): Promise<Date>;
  /**
   * Checks `code` inside the caller's transaction: the right code is spent, a wrong one costs an
   * attempt. Commit the transaction in both cases (the attempt must count).
   */
  consume(manager: EntityManager, contact: Contact, purpose: OtpPurpose, code: string): Promise<ConsumeResult>;
}

export interface OtpCodeSettings {
  readonly ttlSec: number;
}

/** The code as typed, or undefined when it is not 6 digits. */
export function normalizeCode(raw: string): string | undefined {
  const code = raw.trim();
  return CODE_PATTERN.test(code) ? code : undefined;
}

export function createOtpCodes(db: DataSource, clock: Clock, kek: Buffer, settings: OtpCodeSettings): OtpCodes {
  // A key of its own, so the key-encryption key is never used for two purposes.
  const hmacKey = deriveKey(kek, "identity.v1 otp code hmac");
  let stores = 0;

  // Bound to where and what for, so a stored hash says nothing about other rows.
  function digest(contact: Contact, purpose: OtpPurpose, code: string): Buffer {
    return createHmac("sha256", hmacKey).update(`${contact.channel}\n${purpose}\n${contact.key}\n${code}`).digest();
  }

  return {
    generate: () => String(randomInt(0, 10 ** OTP_LENGTH)).padStart(OTP_LENGTH, "0"),

    async store(contact, purpose, code, userId) {
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + settings.ttlSec * 1000);
      await db.query(
        `INSERT INTO otp_codes (channel, destination, purpose, user_id, code_hash, attempts, created_at, expires_at, consumed_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, NULL)
         ON CONFLICT (channel, destination, purpose) DO UPDATE SET
           user_id = EXCLUDED.user_id, code_hash = EXCLUDED.code_hash, attempts = 0,
           created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, consumed_at = NULL`,
        [contact.channel, contact.key, purpose, userId, digest(contact, purpose, code), now, expiresAt],
      );
      if (++stores % SWEEP_EVERY === 0) {
        await db.query(`DELETE FROM otp_codes WHERE expires_at < $1`, [new Date(now.getTime() - KEEP_AFTER_EXPIRY_MS)]);
      }
      return expiresAt;
    },

    async consume(manager, contact, purpose, code) {
      const now = clock.now();
      const where = [contact.channel, contact.key, purpose];
      const updated = returnedRows<{ ok: boolean; attempts: number; user_id: string | null }>(await manager.query(
        `UPDATE otp_codes SET
           attempts = attempts + CASE WHEN code_hash = $4 THEN 0 ELSE 1 END,
           consumed_at = CASE WHEN code_hash = $4 THEN $5::timestamptz END
         WHERE channel = $1 AND destination = $2 AND purpose = $3
           AND consumed_at IS NULL AND expires_at > $5 AND attempts < $6
         RETURNING consumed_at IS NOT NULL AS ok, attempts, user_id`,
        [...where, digest(contact, purpose, code), now, OTP_MAX_ATTEMPTS],
      ));
      const row = updated[0];
      if (row?.ok) return { ok: true, userId: row.user_id };
      if (row) return { ok: false, reason: row.attempts >= OTP_MAX_ATTEMPTS ? "OTP_ATTEMPTS_EXHAUSTED" : "OTP_INVALID" };
      // Nothing to check against: say why, so the client knows to ask for a new code.
      const [state] = (await manager.query(
        `SELECT expires_at <= $4 AS expired, attempts >= $5 AS exhausted FROM otp_codes
         WHERE channel = $1 AND destination = $2 AND purpose = $3 AND consumed_at IS NULL`,
        [...where, now, OTP_MAX_ATTEMPTS],
      )) as Array<{ expired: boolean; exhausted: boolean }>;
      if (state?.exhausted) return { ok: false, reason: "OTP_ATTEMPTS_EXHAUSTED" };
      if (state?.expired) return { ok: false, reason: "OTP_EXPIRED" };
      return { ok: false, reason: "OTP_INVALID" };
    },
  };
}
