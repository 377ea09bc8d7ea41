// One-time codes: 6 digits from the CSPRNG, stored only as an HMAC keyed with a secret derived
// from the key-encryption key, single use, a few wrong attempts at most. Spending a code and
// counting a wrong attempt are one conditional UPDATE each, so of several concurrent checks of
// the right code exactly one succeeds, on any instance.
import { randomInt } from "node:crypto";
import type { OtpPurpose, Store, Tx } from "../../store/index.js";
import type { KeyedHash } from "../crypto.js";
import type { Clock } from "../clock.js";
import type { Contact } from "../accounts/contacts.js";

export type { OtpPurpose };

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
  /**
   * Stores `code` for the contact and purpose, replacing any earlier one; returns its expiry.
   * `binding` (an MFA challenge) is mixed into the stored hash: the code then checks out only
   * when consume is given the same binding.
   */
  store(contact: Contact, purpose: OtpPurpose, code: string, userId: string | null, binding?: string): Promise<Date>;
  /**
   * Checks `code` inside the caller's transaction: the right code is spent, a wrong one costs an
   * attempt. Commit the transaction in both cases (the attempt must count).
   */
  consume(tx: Tx, contact: Contact, purpose: OtpPurpose, code: string, binding?: string): Promise<ConsumeResult>;
}

export interface OtpCodeSettings {
  readonly ttlSec: number;
}

/** The code as typed, or undefined when it is not 6 digits. */
export function normalizeCode(raw: string): string | undefined {
  const code = raw.trim();
  return CODE_PATTERN.test(code) ? code : undefined;
}

/** What one-time codes need of the store. */
export type OtpCodesDb = Pick<Store, "direct" | "otpCodes">;

export function createOtpCodes(db: OtpCodesDb, clock: Clock, hash: KeyedHash, settings: OtpCodeSettings): OtpCodes {
  // A key of its own (src/domain/secrets/hmac-keys.ts), never the key-encryption key.
  let stores = 0;

  // Bound to where and what for, so a stored hash says nothing about other rows.
  function message(contact: Contact, purpose: OtpPurpose, code: string, binding: string | undefined): string {
    const bound = binding === undefined ? "" : `\n${binding}`;
    return `${contact.channel}\n${purpose}\n${contact.key}\n${code}${bound}`;
  }

  return {
    generate: () => String(randomInt(0, 10 ** OTP_LENGTH)).padStart(OTP_LENGTH, "0"),

    async store(contact, purpose, code, userId, binding) {
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + settings.ttlSec * 1000);
      const key = { channel: contact.channel, destination: contact.key, purpose };
      await db.otpCodes.upsert(db.direct, key, { userId, codeHash: hash.digest(message(contact, purpose, code, binding)), createdAt: now, expiresAt });
      if (++stores % SWEEP_EVERY === 0) await db.otpCodes.sweep(db.direct, new Date(now.getTime() - KEEP_AFTER_EXPIRY_MS));
      return expiresAt;
    },

    async consume(tx, contact, purpose, code, binding) {
      const now = clock.now();
      const key = { channel: contact.channel, destination: contact.key, purpose };
      const row = await db.otpCodes.consume(tx, key, hash.candidates(message(contact, purpose, code, binding)), now, OTP_MAX_ATTEMPTS);
      if (row?.ok) return { ok: true, userId: row.userId };
      if (row) return { ok: false, reason: row.attempts >= OTP_MAX_ATTEMPTS ? "OTP_ATTEMPTS_EXHAUSTED" : "OTP_INVALID" };
      // Nothing to check against: say why, so the client knows to ask for a new code.
      const state = await db.otpCodes.state(tx, key, now, OTP_MAX_ATTEMPTS);
      if (state?.exhausted) return { ok: false, reason: "OTP_ATTEMPTS_EXHAUSTED" };
      if (state?.expired) return { ok: false, reason: "OTP_EXPIRED" };
      return { ok: false, reason: "OTP_INVALID" };
    },
  };
}
