// The email addresses and phone numbers one-time codes are sent to, and the accounts owning them.
import type { EntityManager } from "typeorm";
import { UserEntity, type UserRow } from "../db/entities/index.js";
import type { Violations } from "./errors.js";
import { normalizeEmail, normalizePhone } from "./identifiers.js";

export type OtpChannel = "sms" | "email";

export interface Contact {
  readonly channel: OtpChannel;
  /** Where the message goes: the normalised address (trimmed, domain lower-cased) or E.164 number. */
  readonly address: string;
  /** What codes and limits are keyed by: accounts match email addresses case-insensitively. */
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
    return { channel, address, key: address.toLowerCase() };
  }
  const phone = normalizePhone(raw);
  if (phone === undefined) {
    violations.add(field, "INVALID_PHONE", "is not a valid phone number in E.164 form (+14155550123)");
    return undefined;
  }
  return { channel, address: phone, key: phone };
}

/** The column that says the contact was proven by a code. */
export function verifiedColumn(contact: Contact): "email_verified_at" | "phone_verified_at" {
  return contact.channel === "email" ? "email_verified_at" : "phone_verified_at";
}

/** Whether `user` has this contact (as its email address or phone number). */
export function ownsContact(user: UserRow, contact: Contact): boolean {
  return contact.channel === "email" ? user.email?.toLowerCase() === contact.key : user.phone === contact.key;
}

export function isContactVerified(user: UserRow, contact: Contact): boolean {
  return (contact.channel === "email" ? user.emailVerifiedAt : user.phoneVerifiedAt) !== null;
}

/** The live (not deleted) account whose email address or phone number this is. */
export function findUserByContact(manager: EntityManager, contact: Contact): Promise<UserRow | null> {
  const query = manager.createQueryBuilder(UserEntity, "u").where("u.deleted_at IS NULL");
  return (contact.channel === "email"
    ? query.andWhere("lower(u.email) = :key", { key: contact.key })
    : query.andWhere("u.phone = :key", { key: contact.key })
  ).getOne();
}
