// The core every one-time-code flow (sign-in, contact verification, password reset) shares:
// sending a code within the send limits, and checking one within the verify limits.
//
// Limits (all in PostgreSQL, shared by every instance; see rate-limits.ts):
//   - per destination: one code per resend cooldown, and a cap per hour;
//   - per client address: a cap on codes sent per hour (stops one client from spraying many
//     destinations, e.g. SMS pumping) and on failed checks per hour (stops guessing across
//     many destinations; each code also dies after OTP_MAX_ATTEMPTS wrong attempts);
//   - SMS only, budgets across all clients: texts per hour in total and per country calling
//     code, because N client addresses would otherwise buy N times the per-address cap
//     (SMS pumping: texts to premium numbers the attacker is paid for).
// A code whose delivery failed, and a successful check, take nothing from the caller's quota.
//
// Nothing here looks at accounts: sending works, and costs, the same whether or not an account
// owns the destination, which is what keeps SendOtp and RequestPasswordReset from telling.
import { parsePhoneNumberFromString } from "libphonenumber-js/max";
import type { Store, Tx } from "../../store/index.js";
import type { OtpConfig } from "../../config.js";
import type { Logger } from "../../logger.js";
import type { ClientMeta } from "../audit/audit.js";
import { parseContact, type Contact, type OtpChannel } from "../accounts/contacts.js";
import { AppError, Violations } from "../errors.js";
import { normalizeCode, type OtpCodes, type OtpFailure, type OtpPurpose } from "./codes.js";
import { composeOtpMessage, type OtpSenders } from "./messages.js";
import { clientAddressKey, RateLimitedError, type RateLimits, type RateRule } from "../limits/rate-limits.js";

const HOUR_MS = 3_600_000;

export interface OtpSent {
  readonly expiresAt: Date;
  /** Earliest time the same caller may have another code sent to this destination. */
  readonly resendAt: Date;
}

/** What a flow does once its code checked out; undefined refuses (answered as OTP_INVALID). */
export type OtpAction<T> = (tx: Tx, codeUserId: string | null) => Promise<T | undefined>;

export interface Otp {
  /**
   * Sends a new code for `purpose`; `userId` binds it to an account (contact verification, MFA),
   * `binding` to an MFA challenge (OtpCodes.store).
   */
  send(contact: Contact, purpose: OtpPurpose, userId: string | null, client: ClientMeta, binding?: string): Promise<OtpSent>;
  /**
   * Checks `code` and, when it is right, runs `action` in the same transaction as spending it,
   * so the code is spent exactly when the action commits.
   */
  check<T>(contact: Contact, purpose: OtpPurpose, code: string, client: ClientMeta, action: OtpAction<T>): Promise<T>;
}

export interface OtpDeps {
  readonly db: Pick<Store, "transaction">;
  readonly logger: Logger;
  readonly codes: OtpCodes;
  readonly limits: RateLimits;
  readonly senders: OtpSenders;
  readonly settings: OtpConfig;
  /** Called when an SMS budget refuses a send: `callingCode` is "+44", or "" for the global budget. */
  readonly onBudgetExhausted?: (scope: SmsBudgetScope, callingCode: string) => void;
}

export type SmsBudgetScope = "sms_global" | "sms_country";

const SMS_GLOBAL_KEY = "otp-send:sms-global";
const SMS_COUNTRY_KEY = "otp-send:sms-country:";

/** "+44" for a UK number; the number is E.164 already (parseContact). */
export function callingCode(e164: string): string {
  const code = parsePhoneNumberFromString(e164)?.countryCallingCode;
  return code === undefined ? "unknown" : `+${code}`;
}

/** Validates the contact (and the code, when one is given) of a request; INVALID_ARGUMENT otherwise. */
export function parseOtpInput(channel: OtpChannel | undefined, destination: string, extra?: { code: string; violations?: Violations }): { contact: Contact; code: string } {
  const violations = extra?.violations ?? new Violations();
  const contact = parseContact(violations, channel, destination);
  const code = extra ? normalizeCode(extra.code) : "";
  if (extra && extra.code.trim() === "") violations.add("code", "REQUIRED", "is required");
  else if (code === undefined) violations.add("code", "INVALID_CODE", "must be the 6 digits that were sent");
  violations.throwIfAny();
  return { contact: contact!, code: code! };
}

function errorSummary(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause ? `${err.message} (${cause.code ?? cause.message ?? "no detail"})` : err.message;
}

export function createOtp({ db, logger, codes, limits, senders, settings, onBudgetExhausted }: OtpDeps): Otp {
  function sendRules(contact: Contact, ip: string): RateRule[] {
    const destination = `${contact.channel}:${contact.key}`;
    const rules: RateRule[] = [
      { key: `otp-send:cooldown:${destination}`, limit: 1, windowMs: settings.resendCooldownSec * 1000 },
      { key: `otp-send:dest:${destination}`, limit: settings.maxSendsPerDestinationPerHour, windowMs: HOUR_MS },
      { key: `otp-send:ip:${clientAddressKey(ip)}`, limit: settings.maxSendsPerIpPerHour, windowMs: HOUR_MS },
    ];
    if (contact.channel === "sms") {
      const country = callingCode(contact.address);
      rules.push(
        { key: SMS_GLOBAL_KEY, limit: settings.smsMaxSendsPerHour, windowMs: HOUR_MS },
        { key: `${SMS_COUNTRY_KEY}${country}`, limit: settings.smsCountryLimits.get(country) ?? settings.smsMaxSendsPerCountryPerHour, windowMs: HOUR_MS },
      );
    }
    return rules;
  }

  /** Takes the send rules; a refusal by an SMS budget is reported (the client sees RATE_LIMITED only). */
  async function takeSendRules(contact: Contact, ip: string) {
    try {
      return await limits.take(sendRules(contact, ip));
    } catch (err) {
      if (err instanceof RateLimitedError) {
        for (const key of err.refusedKeys) {
          if (key === SMS_GLOBAL_KEY) onBudgetExhausted?.("sms_global", "");
          else if (key.startsWith(SMS_COUNTRY_KEY)) onBudgetExhausted?.("sms_country", key.slice(SMS_COUNTRY_KEY.length));
        }
      }
      throw err;
    }
  }

  function verifyRules(ip: string): RateRule[] {
    return [{ key: `otp-verify-fail:ip:${clientAddressKey(ip)}`, limit: settings.maxVerifyFailuresPerIpPerHour, windowMs: HOUR_MS }];
  }

  return {
    async send(contact, purpose, userId, client, binding) {
      const sender = senders[contact.channel];
      if (!sender) throw new AppError("OTP_CHANNEL_DISABLED", `no ${contact.channel} provider is configured`);
      const reservation = await takeSendRules(contact, client.ip);
      const code = codes.generate();
      try {
        await sender.send(composeOtpMessage(contact.channel, contact.address, purpose, code, settings.ttlSec));
      } catch (err) {
        // The caller did not get a code: it must not count against them.
        await limits.refund(reservation).catch((refundErr: unknown) => logger.warn({ err: refundErr }, "rate-limit refund failed"));
        throw new AppError("OTP_DELIVERY_FAILED", `${purpose} code delivery by ${sender.name} failed: ${errorSummary(err)}`, { cause: err });
      }
      // Stored once delivered, so a failed delivery leaves an earlier code usable.
      const expiresAt = await codes.store(contact, purpose, code, userId, binding);
      return { expiresAt, resendAt: reservation.nextAt };
    },

    async check<T>(contact: Contact, purpose: OtpPurpose, code: string, client: ClientMeta, action: OtpAction<T>): Promise<T> {
      // Every check takes a slot from the client's failure budget; a successful one gives it back.
      const reservation = await limits.take(verifyRules(client.ip));
      const outcome = await db.transaction(async (tx): Promise<{ value: T } | { reason: OtpFailure }> => {
        const consumed = await codes.consume(tx, contact, purpose, code);
        if (!consumed.ok) return consumed;
        const value = await action(tx, consumed.userId);
        return value === undefined ? { reason: "OTP_INVALID" } : { value };
      }).catch(async (err: unknown) => {
        // The action failed (e.g. hashing overloaded): rolled back, the code is unspent, and it was no failed guess.
        await limits.refund(reservation);
        throw err;
      });
      if ("reason" in outcome) throw new AppError(outcome.reason, `${purpose} code on ${contact.channel} refused: ${outcome.reason}`);
      await limits.refund(reservation);
      return outcome.value;
    },
  };
}
