// The HMAC keys of backup codes, one-time codes and service keys: random 256-bit secrets created
// once (at the first start after the upgrade; instances starting together agree on one), stored
// sealed under the key-encryption keyring, so rotating the KEK reseals them and changes no hash.
//
// Before issue 18 they were derived from the KEK. Hashes stored then keep verifying: the first
// start also stores, sealed, the key derived the old way (from the KEK that sealed the oldest
// signing key, i.e. the KEK in use before the upgrade), and verification tries it second. It
// retires by itself (store: retireLegacyHmacKeys, at each start) once no stored hash needs it:
// one-time codes a day after the upgrade, backup codes when every code of then is used or
// replaced, service keys when every key of then is revoked or expired.
import { randomBytes } from "node:crypto";
import type { Logger } from "../../logger.js";
import type { Store } from "../../store/index.js";
import type { HmacPurpose } from "../../store/secrets.js";
import type { Clock } from "../clock.js";
import { deriveKey, keyedHash, sealWith, unsealWith, type KeyedHash, type Keyring } from "../crypto.js";

/** The HKDF labels the keys were derived with before issue 18. */
const LEGACY_LABELS: Record<HmacPurpose, string> = {
  "backup-codes": "identity backup codes",
  "otp-codes": "identity.v1 otp code hmac",
  "service-keys": "identity service keys",
};

export type HmacKeys = Record<HmacPurpose, KeyedHash>;

/** The associated data each stored key is sealed with (store: SEALED_COLUMNS). */
const aad = (purpose: HmacPurpose) => `hmac:${purpose}`;
const legacyAad = (purpose: HmacPurpose) => `hmac-legacy:${purpose}`;

export async function loadHmacKeys(db: Pick<Store, "direct" | "secrets">, keyring: Keyring, clock: Clock, logger?: Logger): Promise<HmacKeys> {
  const retired = await db.secrets.retireLegacyHmacKeys(db.direct, clock.now());
  if (retired.length > 0) logger?.info({ purposes: retired }, "legacy HMAC keys retired: no stored hash needs them");
  const legacyBase = await legacyKek(db, keyring);
  const keys = {} as HmacKeys;
  for (const purpose of Object.keys(LEGACY_LABELS) as HmacPurpose[]) {
    let row = await db.secrets.hmacKey(db.direct, purpose);
    if (!row) {
      await db.secrets.insertHmacKey(db.direct, purpose, {
        keySealed: sealWith(keyring, randomBytes(32), aad(purpose)),
        legacyKeySealed: legacyBase ? sealWith(keyring, deriveKey(legacyBase, LEGACY_LABELS[purpose]), legacyAad(purpose)) : null,
      }, clock.now());
      row = await db.secrets.hmacKey(db.direct, purpose);
      if (!row) throw new Error(`the HMAC key of ${purpose} was not stored`);
    }
    const legacy = row.legacyKeySealed ? unsealWith(keyring, row.legacyKeySealed, legacyAad(purpose)).plaintext : undefined;
    keys[purpose] = keyedHash(unsealWith(keyring, row.keySealed, aad(purpose)).plaintext, legacy);
  }
  return keys;
}

/**
 * The KEK the previous version derived its HMAC keys from: the one that opens the oldest signing
 * key when that key was sealed before keyrings (an installation upgraded from it); undefined for
 * a new installation, which has no hash to keep.
 */
async function legacyKek(db: Pick<Store, "direct" | "secrets">, keyring: Keyring): Promise<Buffer | undefined> {
  const oldest = await db.secrets.oldestSealedSigningKey(db.direct);
  if (!oldest) return undefined;
  for (const entry of keyring.keys) {
    const opened = (() => {
      try {
        return unsealWith({ current: entry, keys: [entry] }, oldest.sealed, oldest.kid).keyId;
      } catch {
        return null;
      }
    })();
    if (opened === undefined) return entry.key;
  }
  return undefined;
}
