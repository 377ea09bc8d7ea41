// Signing keys: Ed25519 key pairs, the private half sealed (src/domain/tokens/signing-keys.ts
// explains the rotation timeline).
import { SigningKeyEntity, type SigningKeyRow } from "../db/entities/signing-key.js";
import { affected, guarded, managerOf, rows, type Tx } from "./tx.js";

export type { SigningKeyRow };

export interface SigningKeyStore {
  /** Takes the transaction-scoped lock that lets one instance at a time create or rotate keys. */
  lock(tx: Tx): Promise<void>;
  count(tx: Tx): Promise<number>;
  insert(tx: Tx, key: Omit<SigningKeyRow, "createdAt">): Promise<void>;
  /** Keys still in the JWKS at `now`, newest activation first. */
  listPublished(tx: Tx, now: Date): Promise<SigningKeyRow[]>;
  /** Retires every key not retired yet. */
  retireCurrent(tx: Tx, retiresAt: Date, expiresAt: Date): Promise<void>;
  /** When the newest key activates (or activated). */
  newestActivation(tx: Tx): Promise<Date | undefined>;
}

export const signingKeyStore: SigningKeyStore = {
  async lock(tx) {
    await rows(tx, "SELECT pg_advisory_xact_lock(hashtext('signing_keys'))");
  },
  count: (tx) => guarded(() => managerOf(tx).count(SigningKeyEntity)),
  async insert(tx, key) {
    await guarded(() => managerOf(tx).insert(SigningKeyEntity, key));
  },
  listPublished: (tx, now) =>
    guarded(() =>
      managerOf(tx)
        .createQueryBuilder(SigningKeyEntity, "k")
        .where("k.expires_at IS NULL OR k.expires_at > :now", { now })
        .orderBy("k.activates_at", "DESC")
        .getMany(),
    ),
  async retireCurrent(tx, retiresAt, expiresAt) {
    await affected(tx, `UPDATE signing_keys SET retires_at = $1, expires_at = $2 WHERE retires_at IS NULL`, [retiresAt, expiresAt]);
  },
  async newestActivation(tx) {
    const [newest] = await rows<{ activates_at: Date }>(tx, `SELECT activates_at FROM signing_keys ORDER BY activates_at DESC LIMIT 1`);
    return newest?.activates_at;
  },
};
