// Ten single-use backup codes, shown once and stored as an HMAC keyed from the key-encryption key.
import { createHmac, randomInt } from "node:crypto";
import type { Store, Tx } from "../../store/index.js";
import type { Clock } from "../clock.js";
import { deriveKey } from "../crypto.js";

export const BACKUP_CODE_COUNT = 10;
const BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";

export interface BackupCodes {
  /** A fresh set, replacing the account's codes in `tx`; returned for showing once (xxxxx-xxxxx). */
  replace(tx: Tx, userId: string): Promise<string[]>;
  /** Spends `code` (normalised: no dash) once. */
  accept(tx: Tx, userId: string, code: string): Promise<boolean>;
  remaining(userId: string): Promise<number>;
}

export function createBackupCodes(db: Pick<Store, "direct" | "backupCodes">, clock: Clock, kek: Buffer): BackupCodes {
  const backupKey = deriveKey(kek, "identity backup codes");
  const hashBackup = (code: string) => createHmac("sha256", backupKey).update(code).digest();

  function newBackupCodes(): string[] {
    return Array.from({ length: BACKUP_CODE_COUNT }, () => {
      const chars = Array.from({ length: 10 }, () => BACKUP_ALPHABET[randomInt(BACKUP_ALPHABET.length)]).join("");
      return `${chars.slice(0, 5)}-${chars.slice(5)}`;
    });
  }

  return {
    async replace(tx, userId) {
      const codes = newBackupCodes();
      await db.backupCodes.replace(tx, userId, codes.map((code) => hashBackup(code.replace("-", ""))));
      return codes;
    },
    // One conditional statement (store: backupCodes.use), so two concurrent uses cannot both pass.
    accept: (tx, userId, code) => db.backupCodes.use(tx, userId, hashBackup(code), clock.now()),
    remaining: (userId) => db.backupCodes.countUnused(db.direct, userId),
  };
}
