// THE last-sign-in-method rule, written once for UnlinkIdentity (a provider identity) and
// RemovePasskey (a passkey): either may go only while the account keeps another way to sign in,
// a password, another linked identity or another passkey. A verified email address does not
// count: whether a code can be sent to it is deployment configuration.
//
// One statement. The account's identities and then its passkeys are locked (FOR UPDATE, in id
// order, always in that order), so of two concurrent removals of an account's last two ways to
// sign in the second waits, then sees the first one gone (a locked row is read as committed)
// and is refused.
import { rows, type Tx } from "./tx.js";

export type RemovalOutcome = "removed" | "not_found" | "last_sign_in_method";

/** What is removed: its table, and its row among the account's locked ones ($2 onwards). */
const METHODS = {
  identity: { table: "federated_identities", target: "SELECT id FROM identities WHERE provider = $2 AND subject = $3" },
  passkey: { table: "passkeys", target: "SELECT id FROM keys WHERE id = $2" },
} as const;

export async function removeSignInMethod(tx: Tx, userId: string, kind: keyof typeof METHODS, match: readonly unknown[]): Promise<RemovalOutcome> {
  const { table, target } = METHODS[kind];
  const [row] = await rows<{ found: number; deleted: number }>(tx,
    `WITH identities AS (
       SELECT id, provider, subject FROM federated_identities WHERE user_id = $1 ORDER BY id FOR UPDATE
     ), keys AS (
       SELECT id FROM passkeys WHERE user_id = $1 ORDER BY id FOR UPDATE
     ), target AS (
       ${target}
     ), deleted AS (
       DELETE FROM ${table} d USING target t
       WHERE d.id = t.id AND (
         EXISTS (SELECT 1 FROM users u WHERE u.id = $1 AND u.password_hash IS NOT NULL)
         OR EXISTS (SELECT 1 FROM identities i WHERE i.id <> t.id)
         OR EXISTS (SELECT 1 FROM keys k WHERE k.id <> t.id))
       RETURNING d.id
     )
     SELECT (SELECT count(*) FROM target)::int AS found, (SELECT count(*) FROM deleted)::int AS deleted`,
    [userId, ...match],
  );
  if (!row || row.found === 0) return "not_found";
  return row.deleted === 1 ? "removed" : "last_sign_in_method";
}
