// `npm run keys:rewrap`: reseals every sealed value under the keyring's current key, so an older
// key-encryption key can then be removed from KEY_ENCRYPTION_KEYS. Batches of one page each (no
// long transaction), each value replaced by one conditional statement (store: replaceSealed);
// running it again changes nothing.
import type { SealedColumn, Store } from "../../store/index.js";
import { SEALED_COLUMNS } from "../../store/index.js";
import { sealWith, unsealWith, type Keyring } from "../crypto.js";

export interface RewrapCounts {
  /** `table.column`. */
  readonly column: string;
  /** Values read. */
  scanned: number;
  /** Resealed under the current key now. */
  resealed: number;
  /** Sealed under the current key already. */
  current: number;
  /** Changed by someone else between the read and the write: left as written (a second run reseals it if it needs to). */
  changed: number;
}

export async function rewrapAll(db: Pick<Store, "direct" | "secrets">, keyring: Keyring, batchSize = 500, columns: readonly SealedColumn[] = SEALED_COLUMNS): Promise<RewrapCounts[]> {
  const results: RewrapCounts[] = [];
  for (const column of columns) {
    const counts: RewrapCounts = { column: `${column.table}.${column.column}`, scanned: 0, resealed: 0, current: 0, changed: 0 };
    let after: string | undefined;
    for (;;) {
      const page = await db.secrets.sealedPage(db.direct, column, after, batchSize);
      for (const { id, sealed } of page) {
        counts.scanned++;
        const aad = column.aad(id);
        const { plaintext, keyId } = unsealWith(keyring, sealed, aad);
        if (keyId === keyring.current.id) {
          counts.current++;
          continue;
        }
        if (await db.secrets.replaceSealed(db.direct, column, id, sealed, sealWith(keyring, plaintext, aad))) counts.resealed++;
        else counts.changed++;
      }
      if (page.length < batchSize) break;
      after = page[page.length - 1]!.id;
    }
    results.push(counts);
  }
  return results;
}
