// What a change of credentials does to what was proven or set up before it. Both helpers run
// in the caller's transaction, so the change and its consequences commit together or not at all.
import type { Store, Tx } from "../../store/index.js";
import type { Contact } from "./contacts.js";

/** What the credential changes need of the store. */
export type CredentialChangeDb = Pick<Store, "users" | "mfaChallenges" | "otpCodes">;

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
export async function endPendingProofs(db: Pick<Store, "mfaChallenges" | "otpCodes">, tx: Tx, userId: string): Promise<EndedProofs> {
  const challenges = await db.mfaChallenges.deletePending(tx, userId);
  const resetCodes = await db.otpCodes.deletePendingResetCodes(tx, userId);
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
 * One statement (UserStore.claimUnverifiedContact): the claim is conditional on the contact still
 * being unverified (of two concurrent claims one does it), and the credentials go only with the
 * claim that did. Call endPendingProofs and end the sessions in the same transaction.
 */
export async function claimUnverifiedContact(db: Pick<Store, "users">, tx: Tx, userId: string, contact: Contact, now: Date): Promise<DiscardedCredentials | null> {
  const claimed = await db.users.claimUnverifiedContact(tx, userId, contact.channel, now);
  if (!claimed) return null;
  const other = contact.channel === "email" ? "phone" : "email";
  return {
    password: claimed.hadPassword,
    totp: claimed.totp > 0,
    pendingTotp: claimed.pendingTotp > 0,
    backupCodes: claimed.backupCodes,
    otherContact: claimed.hadOtherContact ? other : null,
  };
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
