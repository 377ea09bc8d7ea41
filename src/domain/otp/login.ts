// Sign-in (and sign-up) with nothing but a phone number or an email address: a LOGIN code
// signs in the account owning the destination, or creates one when OTP_SIGN_UP allows.
import type { Tx, UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import { findUserByContact, isContactVerified, type Contact, type OtpChannel } from "../accounts/contacts.js";
import { claimUnverifiedContact, discardedDetails, endPendingProofs, type CredentialChangeDb } from "../accounts/credential-changes.js";
import { parseOtpInput, type Otp, type OtpSent } from "./otp.js";
import type { Revocations } from "../tokens/revocation.js";
import type { Sessions } from "../sessions/sessions.js";
import type { SignIn, SignInResult } from "../sessions/sign-in.js";


export interface OtpSignIn {
  readonly user: UserRow;
  /** The code created the account. */
  readonly newUser: boolean;
  readonly result: SignInResult;
}

export interface OtpLogin {
  send(channel: OtpChannel | undefined, destination: string, client: ClientMeta): Promise<OtpSent>;
  verify(channel: OtpChannel | undefined, destination: string, code: string, client: ClientMeta): Promise<OtpSignIn>;
}

export interface OtpLoginDeps {
  readonly db: CredentialChangeDb;
  readonly otp: Otp;
  readonly clock: Clock;
  readonly sessions: Sessions;
  readonly signIn: SignIn;
  readonly audit: AuditLog;
  readonly revocations: Revocations;
  readonly signUpEnabled: boolean;
}

/** `amr` of sessions started by a code (RFC 8176 `otp`, plus the channel). */
export function otpAmr(channel: OtpChannel): string[] {
  return ["otp", channel];
}

export function createOtpLogin({ db, otp, clock, sessions, signIn, audit, revocations, signUpEnabled }: OtpLoginDeps): OtpLogin {
  /** Creates the account of a contact; null when another request created it first. */
  function createAccount(tx: Tx, contact: Contact, now: Date): Promise<UserRow | null> {
    return db.users.insertForContact(tx, contact.channel, contact.address, now);
  }

  /**
   * The code proves the contact. When the account had it unverified, someone else may have put it
   * there (account pre-hijacking: sign up with a victim's address, a password and a second factor,
   * wait for the victim to sign in by code). So every credential they may have set up (password,
   * TOTP, backup codes), their pending challenges and reset codes and every other session are
   * discarded: the owner of the contact keeps the account, and sets a password with a reset and
   * a second factor if they want them. Audited as CONTACT_VERIFIED with what was discarded.
   */
  async function claimContact(tx: Tx, user: UserRow, contact: Contact, now: Date, client: ClientMeta): Promise<boolean> {
    const discarded = await claimUnverifiedContact(db, tx, user.id, contact, now);
    if (!discarded) return false;
    await endPendingProofs(db, tx, user.id);
    await sessions.revokeAll(user.id, "contact_claimed", undefined, tx);
    const details = discardedDetails(discarded);
    await audit.record({ userId: user.id, type: "CONTACT_VERIFIED", client, details: { channel: contact.channel, ...details } }, tx);
    if (discarded.totp) await audit.record({ userId: user.id, type: "MFA_DISABLED", client, details: { cause: "contact_claimed" } }, tx);
    return true;
  }

  return {
    async send(channel, destination, client) {
      const { contact } = parseOtpInput(channel, destination);
      return otp.send(contact, "login", null, client);
    },

    async verify(channel, destination, rawCode, client) {
      const { contact, code } = parseOtpInput(channel, destination, { code: rawCode });
      const outcome = await otp.check(contact, "login", code, client, async (tx) => {
        const now = clock.now();
        let user = await findUserByContact(db, tx, contact);
        let newUser = false;
        if (!user && signUpEnabled) {
          user = await createAccount(tx, contact, now);
          newUser = user !== null;
          user ??= await findUserByContact(db, tx, contact);
        }
        // No account (sign-up off) or a disabled one: answered like a wrong code.
        if (!user || !db.users.isLive(user)) return undefined;
        const claimed = !newUser && !isContactVerified(user, contact) && (await claimContact(tx, user, contact, now, client));
        if (claimed) user = await db.users.get(tx, user.id);
        // Tokens, or an MFA challenge when the account has a second factor.
        const result = await signIn.complete(tx, user, otpAmr(contact.channel), client);
        const details: Record<string, string> = { method: "otp", channel: contact.channel };
        if (claimed) details.contact_claimed = "true";
        const sessionId = result.kind === "tokens" ? result.tokens.sessionId : null;
        // With MFA the sign-in succeeds only at VerifyMfa, which records it.
        if (newUser || result.kind === "tokens") {
          await audit.record({ userId: user.id, type: newUser ? "SIGN_UP" : "LOGIN_SUCCEEDED", client, sessionId, details }, tx);
        }
        return { user, newUser, result, claimedAt: claimed ? now : undefined };
      });
      if (outcome.claimedAt) revocations.userTokensInvalidated(outcome.user.id, outcome.claimedAt, "active");
      return { user: outcome.user, newUser: outcome.newUser, result: outcome.result };
    },
  };
}
