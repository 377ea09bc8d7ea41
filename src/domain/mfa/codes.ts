// The shape of the codes a caller types: six TOTP digits, or a ten-character backup code.
import { invalidField } from "../errors.js";

export const TOTP_CODE = /^\d{6}$/;
export const BACKUP_CODE = /^[a-z0-9]{10}$/;
/** DisableTotp takes either. */
export const ANY_CODE = /^(\d{6}|[a-z0-9]{10})$/;

/** The code without spaces and dashes, lower-cased; INVALID_ARGUMENT when missing or malformed. */
export function requireCode(field: string, code: string, pattern: RegExp): string {
  const trimmed = code.replace(/[\s-]/g, "").toLowerCase();
  if (trimmed === "") throw invalidField(field, "REQUIRED", "is required");
  if (!pattern.test(trimmed)) throw invalidField(field, "INVALID_FORMAT", "is not a code of the expected form");
  return trimmed;
}
