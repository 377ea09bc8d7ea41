// The one place where domain errors become wire errors: a canonical code, a generic message,
// and google.rpc details (ErrorInfo always; BadRequest and RetryInfo when they apply).
import { Code, ConnectError } from "@connectrpc/connect";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AppError, type ErrorReason } from "../domain/errors.js";
import { isDatabaseUnavailable } from "../store/errors.js";

type OutgoingDetail = { desc: DescMessage; value: MessageInitShape<DescMessage> };

export const ERROR_DOMAIN = "identity.v1";

const wire: Record<ErrorReason, { code: Code; message: string }> = {
  INVALID_ARGUMENT: { code: Code.InvalidArgument, message: "invalid request; see the field violations" },
  IDENTIFIER_TAKEN: { code: Code.AlreadyExists, message: "an account with this email, username or phone already exists" },
  INVALID_CREDENTIALS: { code: Code.Unauthenticated, message: "invalid credentials" },
  WRONG_PASSWORD: { code: Code.PermissionDenied, message: "the password is not correct" },
  AUTHENTICATION_REQUIRED: { code: Code.Unauthenticated, message: "authentication required" },
  ACCESS_TOKEN_INVALID: { code: Code.Unauthenticated, message: "the access token is not valid" },
  SERVICE_KEY_REQUIRED: { code: Code.Unauthenticated, message: "a service credential is required" },
  SERVICE_KEY_INVALID: { code: Code.PermissionDenied, message: "the service credential is not valid" },
  REFRESH_TOKEN_INVALID: { code: Code.Unauthenticated, message: "the refresh token is not valid" },
  REFRESH_TOKEN_REUSED: { code: Code.Unauthenticated, message: "the refresh token is not valid" },
  // Another refresh spent this token a moment ago: the session is fine. ABORTED (a concurrency
  // conflict, AIP-194): retry after RetryInfo with the newest refresh token, not this one.
  REFRESH_TOKEN_CONCURRENT: { code: Code.Aborted, message: "the refresh token was just used by another request; retry with the newest refresh token" },
  SESSION_NOT_FOUND: { code: Code.NotFound, message: "session not found" },
  RATE_LIMITED: { code: Code.ResourceExhausted, message: "too many requests; retry later" },
  // A one-time code that does not sign in or verify: the same whether or not an account owns
  // the destination. EXPIRED and ATTEMPTS_EXHAUSTED tell the client to ask for a new code.
  OTP_INVALID: { code: Code.Unauthenticated, message: "the code is not valid" },
  OTP_EXPIRED: { code: Code.Unauthenticated, message: "the code has expired; request a new one" },
  OTP_ATTEMPTS_EXHAUSTED: { code: Code.Unauthenticated, message: "too many wrong attempts; request a new code" },
  OTP_DELIVERY_FAILED: { code: Code.Unavailable, message: "the code could not be sent; retry later" },
  OTP_CHANNEL_DISABLED: { code: Code.FailedPrecondition, message: "codes cannot be sent on this channel" },
  OVERLOADED: { code: Code.ResourceExhausted, message: "the service is busy; retry later" },
  MFA_CODE_INVALID: { code: Code.Unauthenticated, message: "the second-factor code is not valid" },
  MFA_CHALLENGE_INVALID: { code: Code.Unauthenticated, message: "the MFA challenge is not valid; sign in again" },
  MFA_ALREADY_ENABLED: { code: Code.FailedPrecondition, message: "two-factor authentication is already enabled" },
  MFA_NOT_ENABLED: { code: Code.FailedPrecondition, message: "two-factor authentication is not enabled" },
  NOT_IMPLEMENTED: { code: Code.Unimplemented, message: "not implemented" },
  DEADLINE_EXCEEDED: { code: Code.DeadlineExceeded, message: "deadline exceeded" },
  UNAVAILABLE: { code: Code.Unavailable, message: "service unavailable; retry later" },
  INTERNAL: { code: Code.Internal, message: "internal error" },
  // Raised by the gateway's transport before any handler runs (see transportReason).
  UNSUPPORTED_ENCODING: { code: Code.Unimplemented, message: "unsupported compression; see the accept-encoding header" },
  MALFORMED_FRAME: { code: Code.InvalidArgument, message: "the request message could not be read" },
  // The gateway's origin gate: a browser page on an origin that is neither its own nor listed.
  ORIGIN_NOT_ALLOWED: { code: Code.PermissionDenied, message: "origin not allowed" },
};

function errorInfo(reason: string): OutgoingDetail {
  return { desc: ErrorInfoSchema, value: { reason, domain: ERROR_DOMAIN } };
}

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof AppError) {
    const { code, message } = wire[err.reason];
    const details: OutgoingDetail[] = [errorInfo(err.reason)];
    if (err.violations.length > 0) {
      details.push({ desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [...err.violations] }) });
    }
    if (err.retryAfterMs !== undefined) {
      details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(err.retryAfterMs) }) });
    }
    return new ConnectError(message, code, undefined, details, err);
  }
  if (err instanceof ConnectError) {
    // Raised by the transport (size limit, unimplemented, cancelled): its message is generic already.
    if (err.findDetails(ErrorInfoSchema).length === 0 && err.code !== Code.Internal) {
      return new ConnectError(err.rawMessage, err.code, err.metadata, [errorInfo(transportReason(err))], err);
    }
    if (err.code !== Code.Internal) return err;
  }
  // The store classifies database errors (src/store/errors.ts): unreachable is retryable.
  const reason: ErrorReason = isDatabaseUnavailable(err) ? "UNAVAILABLE" : "INTERNAL";
  return new ConnectError(wire[reason].message, wire[reason].code, undefined, [errorInfo(reason)], err);
}

/**
 * The ErrorInfo reason of an error the transport raised itself. An encoding it does not accept
 * is UNSUPPORTED_ENCODING (UNIMPLEMENTED; its message names the accepted ones: gzip); a frame
 * flagged compressed without an encoding, compressed bytes that do not decompress, or binary
 * bytes that do not parse are MALFORMED_FRAME, answered INVALID_ARGUMENT (connect-node says
 * INTERNAL, as gRPC's status table does, but the fault is the client's bytes, INTERNAL would page
 * an operator for every fuzzer, and the gRPC port answers INVALID_ARGUMENT for the same bytes);
 * anything else is named after its code (RESOURCE_EXHAUSTED, ...).
 * The messages matched are connect-es's (test/security/gateway-hardening.test.ts pins them).
 */
export function transportReason(err: ConnectError): string {
  if (err.code === Code.Unimplemented && err.rawMessage.startsWith("unknown compression")) return "UNSUPPORTED_ENCODING";
  if (err.code === Code.Internal && /^(received compressed envelope|decompression failed|parse binary:)/.test(err.rawMessage)) return "MALFORMED_FRAME";
  return Code[err.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * Adds an ErrorInfo to an error connect-node raised before any handler ran (so it never passed
 * through toConnectError), in place: connect-node serialises this same object right after.
 * Returns the reason added, or undefined when the error already carried one.
 */
export function annotateTransportError(err: ConnectError): string | undefined {
  if (err.findDetails(ErrorInfoSchema).length > 0) return undefined;
  const reason = transportReason(err);
  err.details.push(errorInfo(reason));
  // Serialised from this object next, so the code can still be corrected here.
  if (reason === "MALFORMED_FRAME") (err as { code: Code }).code = Code.InvalidArgument;
  return reason;
}
