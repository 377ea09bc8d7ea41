// A forgotten password, reset with a code sent to the account's email address or phone number.
// Requesting a code answers the same whether or not an account owns the destination (a code is
// sent either way; without an account it resets nothing). A reset ends every session and makes
// every access token issued before it stop verifying at once.
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import { findUserByContact, type OtpChannel } from "./contacts.js";
import { claimUnverifiedContact, discardedDetails, endPendingProofs, type CredentialChangeDb } from "./credential-changes.js";
import { Violations } from "../errors.js";
import { parseOtpInput, type Otp } from "../otp/otp.js";
import { checkPassword, type PasswordHasher } from "./passwords.js";
import type { Revocations } from "../tokens/revocation.js";
import type { Sessions } from "../sessions/sessions.js";

export interface PasswordReset {
  /** Sends a reset code; returns when it expires. */
  request(channel: OtpChannel | undefined, destination: string, client: ClientMeta): Promise<{ expiresAt: Date; resendAt: Date }>;
  /** Sets the new password; returns how many sessions ended. */
  reset(channel: OtpChannel | undefined, destination: string, code: string, newPassword: string, client: ClientMeta): Promise<number>;
}

export interface PasswordResetDeps {
  readonly db: CredentialChangeDb;
  readonly otp: Otp;
  readonly clock: Clock;
  readonly passwords: PasswordHasher;
  readonly sessions: Sessions;
  readonly audit: AuditLog;
  readonly revocations: Revocations;
}

export function createPasswordReset({ db, otp, clock, passwords, sessions, audit, revocations }: PasswordResetDeps): PasswordReset {
  return {
    async request(channel, destination, client) {
      const { contact } = parseOtpInput(channel, destination);
      return otp.send(contact, "password_reset", null, client);
    },

    async reset(channel, destination, rawCode, newPassword, client) {
      const violations = new Violations();
      const passwordViolation = checkPassword("new_password", newPassword);
      if (passwordViolation) violations.add(passwordViolation.field, passwordViolation.reason, passwordViolation.description);
      const { contact, code } = parseOtpInput(channel, destination, { code: rawCode, violations });
      // otp.check takes the verify failure limit before anything else; the new password is hashed
      // only once the code checked out. A wrong code is answered without a hash, whether or not
      // an account owns the destination (the lookup comes after the hash, so that with the right
      // code the time does not tell either).
      const done = await otp.check(contact, "password_reset", code, client, async (tx) => {
        const passwordHash = await passwords.hash(newPassword, client.ip);
        const user = await findUserByContact(db, tx, contact);
        if (!user || !db.users.isLive(user)) return undefined;
        const now = clock.now();
        // The code also proves the contact. When the account had it unverified, whoever put it
        // there may have set up a password and a second factor to keep (pre-hijacking): they go,
        // as when the contact is claimed by a sign-in code.
        const discarded = await claimUnverifiedContact(db, tx, user.id, contact, now);
        await db.users.resetPassword(tx, user.id, passwordHash, now);
        // Challenges won with the old password and the account's other reset codes end here.
        await endPendingProofs(db, tx, user.id);
        const ended = await sessions.revokeAll(user.id, "password_reset", undefined, tx);
        const details = { channel: contact.channel, ended_sessions: String(ended), ...(discarded ? discardedDetails(discarded) : {}) };
        await audit.record({ userId: user.id, type: "PASSWORD_RESET", client, details }, tx);
        if (discarded?.totp) await audit.record({ userId: user.id, type: "MFA_DISABLED", client, details: { cause: "contact_claimed" } }, tx);
        return { userId: user.id, at: now, ended };
      });
      revocations.userTokensInvalidated(done.userId, done.at, "active");
      return done.ended;
    },
  };
}
