// The one error type of the domain. `reason` is a stable machine code; services/errors.ts
// maps it to a canonical gRPC code in exactly one place. `message` is for the server log.

export type ErrorReason =
  | "INVALID_ARGUMENT"
  | "IDENTIFIER_TAKEN"
  | "INVALID_CREDENTIALS"
  | "AUTHENTICATION_REQUIRED"
  | "ACCESS_TOKEN_INVALID"
  | "SERVICE_KEY_REQUIRED"
  | "SERVICE_KEY_INVALID"
  | "REFRESH_TOKEN_INVALID"
  | "REFRESH_TOKEN_REUSED"
  | "REFRESH_TOKEN_CONCURRENT"
  | "SESSION_NOT_FOUND"
  | "WRONG_PASSWORD"
  | "RATE_LIMITED"
  | "OTP_INVALID"
  | "OTP_EXPIRED"
  | "OTP_ATTEMPTS_EXHAUSTED"
  | "OTP_DELIVERY_FAILED"
  | "OTP_CHANNEL_DISABLED"
  | "OVERLOADED"
  | "MFA_CODE_INVALID"
  | "MFA_CHALLENGE_INVALID"
  | "MFA_ALREADY_ENABLED"
  | "MFA_NOT_ENABLED"
  | "NOT_IMPLEMENTED"
  | "DEADLINE_EXCEEDED"
  | "UNAVAILABLE"
  | "INTERNAL"
  | "UNSUPPORTED_ENCODING"
  | "MALFORMED_FRAME"
  | "ORIGIN_NOT_ALLOWED";

export interface FieldViolation {
  readonly field: string;
  readonly reason: string;
  readonly description: string;
}

export interface AppErrorOptions {
  readonly violations?: readonly FieldViolation[];
  readonly retryAfterMs?: number;
  readonly cause?: unknown;
}

export class AppError extends Error {
  override name = "AppError";
  readonly violations: readonly FieldViolation[];
  readonly retryAfterMs: number | undefined;

  constructor(readonly reason: ErrorReason, message: string = reason, options: AppErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.violations = options.violations ?? [];
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Collects field violations and throws one INVALID_ARGUMENT error carrying all of them. */
export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, reason: string, description: string): this {
    this.list.push({ field, reason, description });
    return this;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw invalidArgument(this.list);
  }
}

function invalidArgument(violations: readonly FieldViolation[]): AppError {
  return new AppError("INVALID_ARGUMENT", `invalid fields: ${violations.map((v) => v.field).join(", ")}`, { violations });
}

/** INVALID_ARGUMENT for one bad field (Violations collects several). */
export function invalidField(field: string, reason: string, description: string): AppError {
  return invalidArgument([{ field, reason, description }]);
}
