// Proving that the signed-in caller owns the email address or phone number on their account.
//
// Only the account's own current contacts can be verified: there is no RPC that adds or
// changes a contact yet, and a code sent to any other destination would verify nothing (it
// would also let a signed-in caller use the service to message arbitrary people). The code is
// bound to the caller's account, so nobody else can spend it.
import type { UserRow } from "../../store/index.js";
import type { Accounts } from "./accounts.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { ownsContact, type Contact, type OtpChannel } from "./contacts.js";
import { endPendingProofs, type CredentialChangeDb } from "./credential-changes.js";
import { invalidField } from "../errors.js";
import { parseOtpInput, type Otp, type OtpSent } from "../otp/otp.js";

export interface ContactVerification {
  send(caller: Caller, channel: OtpChannel | undefined, destination: string, client: ClientMeta): Promise<OtpSent>;
  /** Marks the contact verified; returns the account as it is now. */
  verify(caller: Caller, channel: OtpChannel | undefined, destination: string, code: string, client: ClientMeta): Promise<UserRow>;
}

export interface ContactVerificationDeps {
  readonly db: CredentialChangeDb;
  readonly otp: Otp;
  readonly clock: Clock;
  readonly accounts: Accounts;
  readonly audit: AuditLog;
}

export function createContactVerification({ db, otp, clock, accounts, audit }: ContactVerificationDeps): ContactVerification {
  /** The caller's contact named by the request; INVALID_ARGUMENT when it is not theirs. */
  async function callersContact(caller: Caller, channel: OtpChannel | undefined, destination: string, code?: string): Promise<{ contact: Contact; code: string }> {
    const input = parseOtpInput(channel, destination, code === undefined ? undefined : { code });
    const user = await accounts.get(caller.userId);
    if (!ownsContact(user, input.contact)) {
      const what = input.contact.channel === "email" ? "email address" : "phone number";
      throw invalidField("destination", "NOT_CALLER_CONTACT", `must be the ${what} of the signed-in account`);
    }
    // Sent to the contact exactly as the account has it.
    const address = input.contact.channel === "email" ? user.email! : user.phone!;
    return { contact: { ...input.contact, address }, code: input.code };
  }

  return {
    async send(caller, channel, destination, client) {
      const { contact } = await callersContact(caller, channel, destination);
      return otp.send(contact, "verify_contact", caller.userId, client);
    },

    async verify(caller, channel, destination, rawCode, client) {
      const { contact, code } = await callersContact(caller, channel, destination, rawCode);
      return otp.check(contact, "verify_contact", code, client, async (tx, codeUserId) => {
        if (codeUserId !== caller.userId) return undefined;
        if (!(await db.users.markContactVerified(tx, caller.userId, contact.channel, contact.key, clock.now()))) return undefined;
        // A contact change: pending challenges and reset codes from before it end.
        await endPendingProofs(db, tx, caller.userId);
        await audit.record({ userId: caller.userId, type: "CONTACT_VERIFIED", client, sessionId: caller.sessionId, details: { channel: contact.channel } }, tx);
        return db.users.get(tx, caller.userId);
      });
    },
  };
}
