// Errors as sentences a person can act on. The service answers a canonical code with a
// google.rpc.ErrorInfo reason (and BadRequest field violations, RetryInfo); this maps them to
// plain text. Codes, reasons and stack traces never reach the page.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

const SESSION_ENDED = "Your session has ended. Please sign in again.";

const BY_REASON: Readonly<Record<string, string>> = {
  IDENTIFIER_TAKEN: "An account with this email address, username or phone number already exists.",
  INVALID_CREDENTIALS: "The username, email, phone number or password is not correct.",
  WRONG_PASSWORD: "The password is not correct.",
  AUTHENTICATION_REQUIRED: "Please sign in first.",
  ACCESS_TOKEN_INVALID: SESSION_ENDED,
  REFRESH_TOKEN_INVALID: SESSION_ENDED,
  REFRESH_TOKEN_REUSED: SESSION_ENDED,
  REFRESH_TOKEN_CONCURRENT: "Your session was just refreshed in another tab. Please try again.",
  SESSION_NOT_FOUND: "That session has already ended.",
  OTP_INVALID: "That code is not correct. Check the code and try again.",
  OTP_EXPIRED: "That code has expired. Please request a new one.",
  OTP_ATTEMPTS_EXHAUSTED: "Too many wrong codes. Please request a new one.",
  OTP_DELIVERY_FAILED: "The code could not be sent. Please try again later.",
  OTP_CHANNEL_DISABLED: "This server cannot send codes that way. Try the other channel.",
  MFA_CODE_INVALID: "That authenticator or backup code is not correct.",
  MFA_CHALLENGE_INVALID: "The sign-in took too long. Please sign in again.",
  MFA_ALREADY_ENABLED: "Two-step verification is already on for this account.",
  MFA_NOT_ENABLED: "Two-step verification is not on for this account.",
  OVERLOADED: "The service is busy. Please try again in a moment.",
  UNAVAILABLE: "The service is not available right now. Please try again in a moment.",
  DEADLINE_EXCEEDED: "The service took too long to answer. Please try again.",
  NOT_IMPLEMENTED: "This is not available yet.",
  INTERNAL: "Something went wrong on our side. Please try again.",
  UNSUPPORTED_ENCODING: "The request was sent in a form the service does not accept. Please reload the page and try again.",
  MALFORMED_FRAME: "The request could not be read. Please reload the page and try again.",
  ORIGIN_NOT_ALLOWED: "This page is not allowed to use the service.",
};

const BY_CODE: Partial<Record<Code, string>> = {
  [Code.Unauthenticated]: SESSION_ENDED,
  [Code.PermissionDenied]: "This request is not allowed.",
  [Code.ResourceExhausted]: "Too many attempts. Please wait a moment and try again.",
  [Code.Unavailable]: "The service cannot be reached. Check your connection and try again.",
  [Code.DeadlineExceeded]: "The service took too long to answer. Please try again.",
  [Code.Canceled]: "The request was cancelled.",
};

const FIELD_LABELS: Readonly<Record<string, string>> = {
  email: "The email address",
  username: "The username",
  phone: "The phone number",
  password: "The password",
  new_password: "The new password",
  current_password: "The current password",
  display_name: "The display name",
  identifier: "The email, username or phone number",
  destination: "The email address or phone number",
  channel: "The channel",
  code: "The code",
  totp_code: "The code",
  backup_code: "The backup code",
};

function fieldSentence(field: string, reason: string, description: string): string {
  if (reason === "IDENTIFIER_REQUIRED") return "Enter an email address, a username or a phone number.";
  if (field === "totp_code" && reason === "REQUIRED") return "Enter a code.";
  const label = FIELD_LABELS[field] ?? "A field";
  return `${label} ${description}.`;
}

function wait(seconds: number): string {
  if (seconds <= 1) return "a second";
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

const SESSION_GONE = new Set(["ACCESS_TOKEN_INVALID", "AUTHENTICATION_REQUIRED", "REFRESH_TOKEN_INVALID", "REFRESH_TOKEN_REUSED"]);

/** Whether the error means the session is over (as opposed to, say, a wrong code). */
export function endsSession(err: unknown): boolean {
  const reason = ConnectError.from(err).findDetails(ErrorInfoSchema)[0]?.reason;
  return reason !== undefined && SESSION_GONE.has(reason);
}

/** One or more plain sentences for any error a call may throw. */
export function friendlyMessage(err: unknown): string {
  const error = ConnectError.from(err);
  // fetch itself failed: offline, or the gateway is down.
  if (error.cause instanceof TypeError) return "The service cannot be reached. Check your connection and try again.";
  if (error.code === Code.InvalidArgument) {
    const sentences = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => fieldSentence(v.field, v.reason, v.description)));
    if (sentences.length > 0) return [...new Set(sentences)].join(" ");
    return "Some of the details entered are not valid.";
  }
  const reason = error.findDetails(ErrorInfoSchema)[0]?.reason;
  if (reason === "RATE_LIMITED") {
    const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
    const seconds = delay ? Math.max(1, Math.ceil(Number(delay.seconds) + delay.nanos / 1e9)) : undefined;
    return seconds === undefined ? "Too many attempts. Please wait a moment and try again." : `Too many attempts. Please wait ${wait(seconds)} and try again.`;
  }
  if (reason !== undefined && BY_REASON[reason]) return BY_REASON[reason];
  return BY_CODE[error.code] ?? "Something went wrong. Please try again.";
}
