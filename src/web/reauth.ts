// Reauthenticate: the signed-in person proves the password (and a second-factor code when the
// account has one) again, in place, and the session's tokens are renewed (auth_time now, amr what
// was proven; the refresh cookie rotates). Used by the contact changes (REAUTHENTICATION_REQUIRED)
// and by the Administration section's step-up (STEP_UP_REQUIRED).
import { ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { MfaMethod } from "../../gen/identity/v1/common_pb.js";
import type { ErrorReason } from "../error-reasons.js";
import { api, ensureFreshToken, holdTokens } from "./api.js";

/** The ErrorInfo reason of a refusal, if it carries one. */
export function reasonOf(err: unknown): string | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0]?.reason;
}

export function refusedFor(err: unknown, reason: ErrorReason): boolean {
  return reasonOf(err) === reason;
}

const METHODS: Readonly<Record<string, MfaMethod>> = { totp: MfaMethod.TOTP, backup: MfaMethod.BACKUP_CODE };

/**
 * Reauthenticates with a form's `password`, `method` (totp, backup, or empty for none) and
 * `code`; keeps the new access token. A code without a method counts as an authenticator code.
 */
export async function reauthenticate(f: HTMLFormElement): Promise<void> {
  const read = (name: string) => ((f.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null)?.value ?? "").trim();
  const password = (f.elements.namedItem("password") as HTMLInputElement).value;
  const code = read("code");
  const mfaMethod = code === "" ? MfaMethod.UNSPECIFIED : (METHODS[read("method")] ?? MfaMethod.TOTP);
  await ensureFreshToken();
  const res = await api().auth.reauthenticate({ password, mfaMethod, mfaCode: code });
  holdTokens(res.tokens);
  f.reset();
}
