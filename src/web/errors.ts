// Errors as sentences a person can act on. The service answers a canonical code with a
// google.rpc.ErrorInfo reason (and BadRequest field violations, RetryInfo); this maps them to
// plain text. Codes, reasons and stack traces never reach the page.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ERROR_REASONS, isErrorReason, type ErrorReason } from "../error-reasons.js";

const SESSION_ENDED = ERROR_REASONS.ACCESS_TOKEN_INVALID.browser;

/** The sentence src/error-reasons.ts declares for a reason, if it declares one. */
function byReason(reason: string | undefined): string | null {
  return reason !== undefined && isErrorReason(reason) ? ERROR_REASONS[reason].browser : null;
}

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
  given_name: "The given name",
  family_name: "The family name",
  country: "The country",
  birth_date: "The birth date",
  update_mask: "The change",
  mfa_code: "The code",
  // Administration (admin.ts).
  role: "The role",
  reason: "The reason",
  email_prefix: "The email prefix",
  username_prefix: "The username prefix",
  phone_prefix: "The phone prefix",
  identifier: "The email, username or phone number",
  destination: "The email address or phone number",
  channel: "The channel",
  code: "The code",
  totp_code: "The code",
  backup_code: "The backup code",
  name: "The name",
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

const SESSION_GONE: ReadonlySet<string> = new Set<ErrorReason>(["ACCESS_TOKEN_INVALID", "AUTHENTICATION_REQUIRED", "REFRESH_TOKEN_INVALID", "REFRESH_TOKEN_REUSED"]);

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
  const reason = error.findDetails(ErrorInfoSchema)[0]?.reason;
  if (error.code === Code.InvalidArgument) {
    const sentences = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => fieldSentence(v.field, v.reason, v.description)));
    if (sentences.length > 0) return [...new Set(sentences)].join(" ");
    // MALFORMED_FRAME is INVALID_ARGUMENT too, without field violations.
    return byReason(reason) ?? "Some of the details entered are not valid.";
  }
  if (reason === "RATE_LIMITED") {
    const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
    const seconds = delay ? Math.max(1, Math.ceil(Number(delay.seconds) + delay.nanos / 1e9)) : undefined;
    return seconds === undefined ? "Too many attempts. Please wait a moment and try again." : `Too many attempts. Please wait ${wait(seconds)} and try again.`;
  }
  return byReason(reason) ?? BY_CODE[error.code] ?? "Something went wrong. Please try again.";
}
