// The API keys of service accounts: `isk_<prefix>_<secret>`. The prefix is public (it finds the
// stored row and may be logged or typed into `revoke-key`); the secret is 256 random bits. Only a
// keyed hash of the whole string is stored, so a copy of the database yields no usable key.
import { randomBytes } from "node:crypto";
import type { KeyedHash } from "../crypto.js";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";
export const KEY_PREFIX_LENGTH = 12;
/** `isk_`, a 12-character base32 prefix, `_`, 43 characters of base64url (32 bytes). */
const KEY_FORMAT = /^isk_([a-z2-7]{12})_[A-Za-z0-9_-]{43}$/;
export const PREFIX_FORMAT = /^[a-z2-7]{12}$/;

export interface NewServiceKey {
  readonly key: string;
  readonly prefix: string;
}

export function newServiceKey(): NewServiceKey {
  const bytes = randomBytes(KEY_PREFIX_LENGTH);
  let prefix = "";
  for (const byte of bytes) prefix += BASE32[byte & 31];
  return { prefix, key: `isk_${prefix}_${randomBytes(32).toString("base64url")}` };
}

/** The prefix of a well-formed service key, else undefined (no lookup is worth making). */
export function serviceKeyPrefix(key: string): string | undefined {
  return KEY_FORMAT.exec(key)?.[1];
}

/** Whether `value` looks like a service key (`isk_...`): a JWT never does. */
export function looksLikeServiceKey(value: string): boolean {
  return value.startsWith("isk_");
}

/**
 * HMAC-SHA256 under a key of its own (random, stored sealed: src/domain/secrets/hmac-keys.ts);
 * keys issued before issue 18 verify under the legacy key while one is kept.
 */
export type ServiceKeyHasher = KeyedHash;
