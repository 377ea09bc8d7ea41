// Small cryptographic helpers shared by the domain modules.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import type { KeyEncryptionKey } from "../config.js";

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

export function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** AES-256-GCM with a key-encryption key: iv (12) | tag (16) | ciphertext. */
export function seal(kek: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", kek, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function unseal(kek: Buffer, sealed: Buffer, aad: string): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", kek, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
}

/** A key of its own for one purpose, derived from the key-encryption key (HKDF-SHA256). */
export function deriveKey(kek: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync("sha256", kek, Buffer.alloc(0), purpose, 32));
}

/** One key-encryption key of the keyring (config.ts reads them: KEY_ENCRYPTION_KEYS). */
export type { KeyEncryptionKey };

/** The key-encryption keys: the first seals, every one unseals (a blob names the key that sealed it). */
export interface Keyring {
  readonly current: KeyEncryptionKey;
  readonly keys: readonly KeyEncryptionKey[];
}

export function createKeyring(keys: readonly KeyEncryptionKey[]): Keyring {
  if (keys.length === 0) throw new Error("a keyring needs at least one key");
  return { current: keys[0]!, keys };
}

/**
 * Sealed blobs since issue 18: "k1" | id length (1) | id | iv (12) | tag (16) | ciphertext, the
 * header authenticated with the caller's associated data. A blob without the header was sealed
 * before keyrings (iv | tag | ciphertext): every key is tried on it. An older blob whose random iv
 * happens to begin with the marker fails the versioned reading's authentication and is read as
 * one of those.
 */
const MARKER = Buffer.from("k1");

function header(id: string): Buffer {
  const idBytes = Buffer.from(id);
  return Buffer.concat([MARKER, Buffer.from([idBytes.length]), idBytes]);
}

function readHeader(sealed: Buffer): { id: string; length: number } | undefined {
  if (sealed.length < 3 + 28 || !sealed.subarray(0, 2).equals(MARKER)) return undefined;
  const length = 3 + sealed[2]!;
  return sealed.length >= length + 28 ? { id: sealed.subarray(3, length).toString(), length } : undefined;
}

/** Seals under the keyring's current key, recording its id. */
export function sealWith(keyring: Keyring, plaintext: Buffer, aad: string): Buffer {
  const head = header(keyring.current.id);
  return Buffer.concat([head, seal(keyring.current.key, plaintext, `${head.toString("latin1")}${aad}`)]);
}

export interface Unsealed {
  readonly plaintext: Buffer;
  /** The id of the key that opened it; undefined for a blob sealed before keyrings. */
  readonly keyId: string | undefined;
}

/** Opens a blob of either format; throws when no key of the keyring opens it. */
export function unsealWith(keyring: Keyring, sealed: Buffer, aad: string): Unsealed {
  const head = readHeader(sealed);
  if (head) {
    const entry = keyring.keys.find((k) => k.id === head.id);
    if (entry) {
      try {
        return { plaintext: unseal(entry.key, sealed.subarray(head.length), `${sealed.subarray(0, head.length).toString("latin1")}${aad}`), keyId: entry.id };
      } catch {
        // An unversioned blob whose iv begins like a header: read below.
      }
    }
  }
  for (const { key } of keyring.keys) {
    try {
      return { plaintext: unseal(key, sealed, aad), keyId: undefined };
    } catch {
      // Not this key.
    }
  }
  throw new Error(head && !keyring.keys.some((k) => k.id === head.id)
    ? `a sealed value names the key-encryption key "${head.id}", which the keyring does not hold (KEY_ENCRYPTION_KEYS)`
    : "no key-encryption key of the keyring opens a sealed value (KEY_ENCRYPTION_KEYS)");
}

/** An HMAC with a current key and, while stored hashes need it, the key before it. */
export interface KeyedHash {
  /** Under the current key: what new rows store. */
  digest(data: string): Buffer;
  /** Under each key a stored hash may have used, current first (for `= ANY(...)` lookups). */
  candidates(data: string): Buffer[];
  /** Whether `stored` is the hash of `data` under either key (constant time per key). */
  matches(data: string, stored: Buffer): boolean;
}

export function keyedHash(current: Buffer, legacy?: Buffer): KeyedHash {
  const mac = (key: Buffer, data: string) => createHmac("sha256", key).update(data).digest();
  const equal = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);
  return {
    digest: (data) => mac(current, data),
    candidates: (data) => (legacy ? [mac(current, data), mac(legacy, data)] : [mac(current, data)]),
    matches: (data, stored) => equal(mac(current, data), stored) || (legacy !== undefined && equal(mac(legacy, data), stored)),
  };
}
