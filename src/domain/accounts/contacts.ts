// The email addresses and phone numbers one-time codes are sent to, and the accounts owning them.
import type { Store, Tx, UserRow } from "../../store/index.js";
import type { Violations } from "../errors.js";
import { normalizeEmail, normalizePhone } from "./identifiers.js";

export type OtpChannel = "sms" | "email";

export interface Contact {
  readonly channel: OtpChannel;
  /** Where the message goes: the canonical address (identifiers.ts) or E.164 number. */
  readonly address: string;
  /**
   * What accounts, codes and limits are matched by: the same canonical form, so an account is
   * only ever found by the very address its codes are sent to.
   */
  readonly key: string;
}

/** The contact a request names, or undefined after adding a field violation. */
export function parseContact(violations: Violations, channel: OtpChannel | undefined, raw: string, field = "destination"): Contact | undefined {
  if (channel === undefined) {
    violations.add("channel", "REQUIRED", "must be SMS or EMAIL");
    return undefined;
  }
  if (raw.trim() === "") {
    violations.add(field, "REQUIRED", "is required");
    return undefined;
  }
  if (channel === "email") {
    const address = normalizeEmail(raw);
    if (address === undefined) {
      violations.add(field, "INVALID_EMAIL", "is not an email address");
      return undefined;
    }
    return { channel, address, key: address };
  }
  const phone = normalizePhone(raw);
  if (phone === undefined) {
    violations.add(field, "INVALID_PHONE", "is not a valid phone number in E.164 form (+14155550123)");
    return undefined;
  }
  return { channel, address: phone, key: phone };
}

/** Whether `user` has this contact (as its email address or phone number). */
export function ownsContact(user: UserRow, contact: Contact): boolean {
  return (contact.channel === "email" ? user.email : user.phone) === contact.key;
}

export function isContactVerified(user: UserRow, contact: Contact): boolean {
  return (contact.channel === "email" ? user.emailVerifiedAt : user.phoneVerifiedAt) !== null;
}

/**
 * The not-deleted account whose email address or phone number this is (live or disabled: the
 * caller tells them apart with isLive).
 */
export function findUserByContact(db: Pick<Store, "users">, tx: Tx, contact: Contact): Promise<UserRow | null> {
  return db.users.findByIdentifier(tx, contact.channel === "email" ? "email" : "phone", contact.key);
}
