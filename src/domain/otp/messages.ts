// What a one-time code message says, and the port its delivery providers implement
// (src/delivery/: console, SMTP, SMS webhook; chosen by configuration).
import type { OtpChannel } from "../accounts/contacts.js";
import type { OtpPurpose } from "./codes.js";

export interface OtpMessage {
  readonly channel: OtpChannel;
  /** Email address or E.164 phone number. */
  readonly to: string;
  /** Email subject; SMS providers ignore it. */
  readonly subject: string;
  readonly text: string;
}

export interface OtpSender {
  /** Provider name for the log, e.g. `smtp`. */
  readonly name: string;
  /** Resolves once the provider accepted the message; rejects when it did not. */
  send(message: OtpMessage): Promise<void>;
}

/** The sender of each enabled channel; a channel without one is disabled. */
export type OtpSenders = Partial<Record<OtpChannel, OtpSender>>;

const WHAT: Record<OtpPurpose, { subject: string; lead: string; tail: string }> = {
  login: { subject: "Your sign-in code", lead: "Your sign-in code is", tail: "" },
  verify_contact: { subject: "Your verification code", lead: "Your verification code is", tail: "" },
  change_contact: {
    subject: "Confirm your new address",
    lead: "Your code to use this address for your account is",
    tail: " If you did not ask for this, ignore this message.",
  },
  mfa: {
    subject: "Your sign-in confirmation code",
    lead: "Your sign-in confirmation code is",
    tail: " It was asked for after your password was entered; if that was not you, change your password.",
  },
  password_reset: {
    subject: "Your password reset code",
    lead: "Your password reset code is",
    tail: " If you did not ask to reset a password, ignore this message.",
  },
};

/** The same words whether or not an account owns the destination: the message must not tell. */
export function composeOtpMessage(channel: OtpChannel, to: string, purpose: OtpPurpose, code: string, ttlSec: number): OtpMessage {
  const what = WHAT[purpose];
  const minutes = Math.max(1, Math.round(ttlSec / 60));
  return {
    channel,
    to,
    subject: what.subject,
    text: `${what.lead} ${code}. It expires in ${minutes} minute${minutes === 1 ? "" : "s"}; never share it.${what.tail}`,
  };
}
