// The email addresses and phone numbers one-time codes are sent to, and the accounts owning them.
import type { EntityManager } from "typeorm";
import { UserEntity, type UserRow } from "../../db/entities/index.js";
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

/** The column that says the contact was proven by a code. */
export function verifiedColumn(contact: Contact): "email_verified_at" | "phone_verified_at" {
  return contact.channel === "email" ? "email_verified_at" : "phone_verified_at";
}

/** Whether `user` has this contact (as its email address or phone number). */
export function ownsContact(user: UserRow, contact: Contact): boolean {
  return (contact.channel === "email" ? user.email : user.phone) === contact.key;
}

export function isContactVerified(user: UserRow, contact: Contact): boolean {
  return (contact.channel === "email" ? user.emailVerifiedAt : user.phoneVerifiedAt) !== null;
}

/**
 * SQL matching a users row's email to the canonical address `param` by equality (never lower():
 * PostgreSQL's lower() is Unicode-aware, as toLowerCase() is). The lower() term adds nothing to
 * what matches; it lets the planner use the unique index on lower(email).
 */
export function emailEquals(column: string, param: string): string {
  return `lower(${column}) = lower(${param}) AND ${column} = ${param}`;
}

/** The live (not deleted) account whose email address or phone number this is. */
export function findUserByContact(manager: EntityManager, contact: Contact): Promise<UserRow | null> {
  const query = manager.createQueryBuilder(UserEntity, "u").where("u.deleted_at IS NULL");
  return (contact.channel === "email"
    ? query.andWhere(emailEquals("u.email", ":key"), { key: contact.key })
    : query.andWhere("u.phone = :key", { key: contact.key })
  ).getOne();
}
