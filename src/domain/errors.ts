// The one error type of the domain. `reason` is a stable machine code, declared with its wire
// code and messages in src/error-reasons.ts; services/errors.ts maps it to the wire in exactly
// one place. `message` is for the server log.
import type { ErrorReason } from "../error-reasons.js";

export type { ErrorReason };

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
