// Ten single-use backup codes, shown once and stored as an HMAC (its key: src/domain/secrets/hmac-keys.ts).
import { randomInt } from "node:crypto";
import type { Store, Tx } from "../../store/index.js";
import type { Clock } from "../clock.js";
import type { KeyedHash } from "../crypto.js";

export const BACKUP_CODE_COUNT = 10;
const BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";

export interface BackupCodes {
  /** A fresh set, replacing the account's codes in `tx`; returned for showing once (xxxxx-xxxxx). */
  replace(tx: Tx, userId: string): Promise<string[]>;
  /** Spends `code` (normalised: no dash) once. */
  accept(tx: Tx, userId: string, code: string): Promise<boolean>;
  remaining(userId: string): Promise<number>;
}

export function createBackupCodes(db: Pick<Store, "direct" | "backupCodes">, clock: Clock, hash: KeyedHash): BackupCodes {
  const hashBackup = (code: string) => hash.digest(code);

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
    // Its hash under each key a stored code may have used (the legacy key, while kept).
    accept: (tx, userId, code) => db.backupCodes.use(tx, userId, hash.candidates(code), clock.now()),
    remaining: (userId) => db.backupCodes.countUnused(db.direct, userId),
  };
}
