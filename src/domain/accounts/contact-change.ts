// Adding or changing the account's email address or phone number (ChangeEmail / ChangePhone, then
// ConfirmContactChange). The new address must prove itself with a code before it replaces the old
// one, and asking for the change needs a recent sign-in (ASVS 7.5.1: whoever holds a stolen
// access token must not be able to move the account's recovery address to their own).
//
// The code is a one-time code of purpose `change_contact`, sent to the NEW address and bound to the
// caller's account (otp.ts: limits, attempt caps, single use). The switch is one statement
// (users.changeContact) in the transaction that spends the code: an address another account took
// meanwhile fails on the unique index, and nothing changes. The old address is told afterwards.
// An address another account has is refused with IDENTIFIER_TAKEN, which sign-up answers already.
import { UniqueViolationError, type Store, type UserRow } from "../../store/index.js";
import type { Logger } from "../../logger.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { AppError, Violations, invalidField } from "../errors.js";
import type { RateLimits } from "../limits/rate-limits.js";
import type { OtpSenders } from "../otp/messages.js";
import { parseOtpInput, type Otp, type OtpSent } from "../otp/otp.js";
import { findUserByContact, ownsContact, parseContact, type OtpChannel } from "./contacts.js";
import { endPendingProofs, type CredentialChangeDb } from "./credential-changes.js";
import { requireLiveUser } from "./live-user.js";
import { requireRecentAuthentication } from "./reauthentication.js";

/**
 * Changes asked for per account an hour: each one looks up whether the address is taken, which
 * must cost as much as sign-up's answer does (and each sends a code, within the OTP limits too).
 */
export const MAX_CONTACT_CHANGES_PER_ACCOUNT_PER_HOUR = 10;

export interface ContactChange {
  /** Sends a code to the new address `raw` of `channel` (ChangeEmail: email, ChangePhone: sms). */
  request(caller: Caller, channel: OtpChannel, raw: string, client: ClientMeta): Promise<OtpSent>;
  /** Switches to the new address when `code` is right; returns the account as it is now. */
  confirm(caller: Caller, channel: OtpChannel | undefined, destination: string, code: string, client: ClientMeta): Promise<UserRow>;
}

export interface ContactChangeDeps {
  readonly db: Pick<Store, "transaction" | "direct"> & CredentialChangeDb;
  readonly otp: Otp;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly limits: RateLimits;
  /** Where the old address is told of the change (the OTP delivery providers). */
  readonly senders: OtpSenders;
  readonly logger: Logger;
  readonly reauthMaxAgeSec: number;
}

const WHAT = { email: "email address", sms: "phone number" } as const;

export function createContactChange({ db, otp, clock, audit, limits, senders, logger, reauthMaxAgeSec }: ContactChangeDeps): ContactChange {
  /** Tells the address the account had that it has another now; a failed delivery is logged, not answered. */
  async function notifyPrevious(channel: OtpChannel, previous: string, userId: string): Promise<void> {
    const sender = senders[channel];
    if (!sender) return;
    const text = `The ${WHAT[channel]} of your account was changed, and this one no longer signs in to it. If you did not do this, reset your password and contact support.`;
    await sender
      .send({ channel, to: previous, subject: `Your ${WHAT[channel]} was changed`, text })
      .catch((err: unknown) => logger.warn({ err, userId, channel }, "contact change notice not delivered"));
  }

  return {
    async request(caller, channel, raw, client) {
      const field = channel === "email" ? "email" : "phone";
      const violations = new Violations();
      const contact = parseContact(violations, channel, raw, field);
      violations.throwIfAny();
      requireRecentAuthentication(caller, clock, reauthMaxAgeSec);
      const user = await requireLiveUser(db, caller.userId);
      if (ownsContact(user, contact!)) throw invalidField(field, "UNCHANGED", `is the account's ${WHAT[channel]} already`);
      await limits.take([{ key: `contact-change:account:${user.id}`, limit: MAX_CONTACT_CHANGES_PER_ACCOUNT_PER_HOUR, windowMs: 3_600_000 }]);
      const owner = await findUserByContact(db, db.direct, contact!);
      if (owner) throw new AppError("IDENTIFIER_TAKEN", `${channel} change of ${user.id} to an address account ${owner.id} has`);
      const sent = await otp.send(contact!, "change_contact", user.id, client);
      await audit.record({ userId: user.id, type: "CONTACT_CHANGE_REQUESTED", client, sessionId: caller.sessionId, details: { channel } });
      return sent;
    },

    async confirm(caller, channel, destination, rawCode, client) {
      const { contact, code } = parseOtpInput(channel, destination, { code: rawCode });
      let changed: { user: UserRow; previous: string | null };
      try {
        changed = await otp.check(contact, "change_contact", code, client, async (tx, codeUserId) => {
          // Bound to the account that asked: nobody else can spend it.
          if (codeUserId !== caller.userId) return undefined;
          // First, while the old address is still the account's: reset codes sent to it, and
          // challenges, must not outlive the change (credential-changes.ts).
          await endPendingProofs(db, tx, caller.userId);
          const switched = await db.users.changeContact(tx, caller.userId, contact.channel, contact.key, clock.now());
          if (!switched) return undefined;
          await audit.record({
            userId: caller.userId, type: "CONTACT_CHANGED", client, sessionId: caller.sessionId,
            details: { channel: contact.channel, added: String(switched.previous === null) },
          }, tx);
          return { user: await db.users.get(tx, caller.userId), previous: switched.previous };
        });
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError("IDENTIFIER_TAKEN", `${contact.channel} taken before ${caller.userId} confirmed it`, { cause: err });
        throw err;
      }
      if (changed.previous !== null) await notifyPrevious(contact.channel, changed.previous, caller.userId);
      return changed.user;
    },
  };
}
