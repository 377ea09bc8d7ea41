// What a change of credentials does to what was proven or set up before it. Both helpers run
// in the caller's transaction, so the change and its consequences commit together or not at all.
import type { EntityManager } from "typeorm";
import { returnedRows } from "../../db/query.js";
import { verifiedColumn, type Contact } from "./contacts.js";

export interface EndedProofs {
  readonly challenges: number;
  readonly resetCodes: number;
}

/**
 * Ends the account's unfinished proofs: pending MFA challenges (a first factor proven with the
 * old password, or against the old factors) and outstanding password-reset codes sent to its
 * contacts. Every change of password, second factor or contact calls this, so nothing obtained
 * before the change completes after it. Deleted rather than marked: VerifyMfa and ResetPassword
 * then find nothing to check against and refuse (MFA_CHALLENGE_INVALID, OTP_INVALID).
 */
export async function endPendingProofs(manager: EntityManager, userId: string): Promise<EndedProofs> {
  const [, challenges] = (await manager.query(`DELETE FROM mfa_challenges WHERE user_id = $1 AND used_at IS NULL`, [userId])) as [unknown, number];
  // Reset codes are keyed by destination (the canonical email address, E.164 number), not by account.
  const [, resetCodes] = (await manager.query(
    `DELETE FROM otp_codes o USING users u
     WHERE u.id = $1 AND o.purpose = 'password_reset' AND o.consumed_at IS NULL
       AND ((o.channel = 'email' AND o.destination = u.email) OR (o.channel = 'sms' AND o.destination = u.phone))`,
    [userId],
  )) as [unknown, number];
  return { challenges, resetCodes };
}

/** The credentials a claim took away, for the audit trail. */
export interface DiscardedCredentials {
  readonly password: boolean;
  /** A confirmed TOTP credential (MFA was on). */
  readonly totp: boolean;
  /** A TOTP credential set up but never confirmed. */
  readonly pendingTotp: boolean;
  readonly backupCodes: number;
  /** The account's other email address or phone number (verified or not), which the creator chose. */
  readonly otherContact: "email" | "phone" | null;
}

/**
 * Marks `contact` verified on the account when it was not, and discards every credential that
 * whoever put the unverified contact there may have set up (account pre-hijacking: sign up with a
 * victim's address, add a password and a second factor, wait for the victim to prove the address):
 * the password, the TOTP credential, the backup codes and MFA itself (and, once they exist,
 * passkeys and linked identities), and the account's other contact: left in place, an address
 * of the squatter's own would let them sign in by code, or reset the password, right after the
 * owner's claim (verified or not: the squatter could verify it while the account was theirs). Older access tokens stop verifying (`tokens_valid_after`).
 * Returns null when the contact was verified already, and nothing changes.
 *
 * One statement: the claim is conditional on the contact still being unverified (of two
 * concurrent claims one does it), and the credentials go only with the claim that did.
 * Call endPendingProofs and end the sessions in the same transaction.
 */
export async function claimUnverifiedContact(manager: EntityManager, userId: string, contact: Contact, now: Date): Promise<DiscardedCredentials | null> {
  const column = verifiedColumn(contact);
  const other = contact.channel === "email" ? "phone" : "email";
  const [row] = returnedRows<{ had_password: boolean; had_other: boolean; totp: number; pending_totp: number; backup_codes: number }>(await manager.query(
    `WITH claimed AS (
       UPDATE users u SET ${column} = $2, password_hash = NULL, mfa_enabled_at = NULL, tokens_valid_after = $2, updated_at = $2,
         ${other} = NULL, ${other}_verified_at = NULL
       FROM users earlier
       WHERE u.id = $1 AND earlier.id = u.id AND u.${column} IS NULL
       RETURNING u.id, earlier.password_hash IS NOT NULL AS had_password, earlier.${other} IS NOT NULL AS had_other, earlier.${other} AS other_address
     ), totp AS (
       DELETE FROM totp_credentials WHERE user_id IN (SELECT id FROM claimed) RETURNING confirmed_at
     ), other_codes AS (
       -- Codes already sent to the removed contact die with it (endPendingProofs no longer sees it).
       DELETE FROM otp_codes WHERE channel = '${contact.channel === "email" ? "sms" : "email"}' AND consumed_at IS NULL
         AND destination IN (SELECT other_address FROM claimed)
     ), backup AS (
       DELETE FROM backup_codes WHERE user_id IN (SELECT id FROM claimed) RETURNING used_at
     )
     SELECT had_password, had_other,
       (SELECT count(*) FROM totp WHERE confirmed_at IS NOT NULL)::int AS totp,
       (SELECT count(*) FROM totp WHERE confirmed_at IS NULL)::int AS pending_totp,
       (SELECT count(*) FROM backup WHERE used_at IS NULL)::int AS backup_codes
     FROM claimed`,
    [userId, now],
  ));
  if (!row) return null;
  return { password: row.had_password, totp: row.totp > 0, pendingTotp: row.pending_totp > 0, backupCodes: row.backup_codes, otherContact: row.had_other ? other : null };
}

/** The audit details of a claim: what was discarded, as a comma-separated list. */
export function discardedDetails(discarded: DiscardedCredentials): Record<string, string> {
  const what = [
    discarded.password ? "password" : "",
    discarded.totp ? "totp" : "",
    discarded.pendingTotp ? "pending_totp" : "",
    discarded.backupCodes > 0 ? "backup_codes" : "",
    discarded.otherContact ?? "",
  ].filter((w) => w !== "");
  return { contact_claimed: "true", discarded: what.join(",") };
}
