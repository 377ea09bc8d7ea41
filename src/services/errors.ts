// The one place where domain errors become wire errors: a canonical code, a generic message,
// and google.rpc details (ErrorInfo always; BadRequest and RetryInfo when they apply).
import { Code, ConnectError } from "@connectrpc/connect";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AppError } from "../domain/errors.js";
import { ERROR_REASONS, type CanonicalCode, type ErrorReason } from "../error-reasons.js";
import { isDatabaseUnavailable } from "../store/errors.js";

type OutgoingDetail = { desc: DescMessage; value: MessageInitShape<DescMessage> };

export const ERROR_DOMAIN = "identity.v1";

/** Canonical code names (src/error-reasons.ts) as Connect codes. */
const CONNECT_CODE: Readonly<Record<CanonicalCode, Code>> = {
  CANCELLED: Code.Canceled,
  UNKNOWN: Code.Unknown,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  PERMISSION_DENIED: Code.PermissionDenied,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  ABORTED: Code.Aborted,
  OUT_OF_RANGE: Code.OutOfRange,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  DATA_LOSS: Code.DataLoss,
  UNAUTHENTICATED: Code.Unauthenticated,
};

/** Each reason's wire code and generic message, built once from the declaration. */
const wire = Object.fromEntries(
  Object.entries(ERROR_REASONS).map(([reason, { code, client }]) => [reason, { code: CONNECT_CODE[code], message: client }]),
) as Readonly<Record<ErrorReason, { readonly code: Code; readonly message: string }>>;

/** The RetryInfo delay of DATABASE_UNAVAILABLE: the readiness monitor probes about this often. */
export const DATABASE_RETRY_MS = 1_000;

function retryInfo(ms: number): OutgoingDetail {
  return { desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(ms) }) };
}

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
  // The store classifies database errors (src/store/errors.ts): unreachable, or not answering
  // within its bounds, is retryable (issue 19), after about one probe of the readiness monitor.
  if (isDatabaseUnavailable(err)) {
    const { code, message } = wire.DATABASE_UNAVAILABLE;
    return new ConnectError(message, code, undefined, [errorInfo("DATABASE_UNAVAILABLE"), retryInfo(DATABASE_RETRY_MS)], err);
  }
  return new ConnectError(wire.INTERNAL.message, wire.INTERNAL.code, undefined, [errorInfo("INTERNAL")], err);
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
