// What both passkey ceremonies share: the relying party's settings, the response JSON as the
// client sent it, and the account's WebAuthn user handle.
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import { AppError, Violations } from "../errors.js";

export interface WebAuthnSettings {
  readonly rpId: string;
  readonly rpName: string;
  readonly origins: readonly string[];
  readonly challengeTtlSec: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A response far larger than any authenticator's is not one (an attestation is a few KiB). */
const MAX_RESPONSE_JSON = 32 * 1024;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * The challenge id and the authenticator's response as JSON objects with a credential id;
 * INVALID_ARGUMENT otherwise. The library checks the rest (and answers a failure for a bad shape).
 */
export function parseFinish<T extends RegistrationResponseJSON | AuthenticationResponseJSON>(challengeId: string, responseJson: string, violations = new Violations()): T {
  if (challengeId === "") violations.add("challenge_id", "REQUIRED", "is required");
  else if (!isUuid(challengeId)) violations.add("challenge_id", "INVALID_ID", "is not a challenge id");
  let response: unknown;
  if (responseJson === "") violations.add("response_json", "REQUIRED", "is required");
  else if (responseJson.length > MAX_RESPONSE_JSON) violations.add("response_json", "TOO_LONG", `at most ${MAX_RESPONSE_JSON} characters`);
  else {
    try {
      response = JSON.parse(responseJson);
    } catch {
      response = undefined;
    }
    const shaped = typeof response === "object" && response !== null && typeof (response as { id?: unknown }).id === "string" && (response as { id: string }).id !== "";
    if (!shaped) violations.add("response_json", "INVALID_FORMAT", "is not a WebAuthn credential response (JSON with an id)");
  }
  violations.throwIfAny();
  return response as T;
}

/** The account's WebAuthn user handle: its UUID's 16 bytes (no personal data, WebAuthn §14.6.1). */
export function userHandle(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId.replace(/-/g, ""), "hex"));
}

/** A verification result narrowed to its verified case (when the library's type has one). */
type Verified<T> = [Extract<T, { verified: true }>] extends [never] ? T : Extract<T, { verified: true }>;

/** Runs a library verification: any failure it raises is WEBAUTHN_VERIFICATION_FAILED (its message kept for the log). */
export async function verified<T extends { verified: boolean }>(what: string, verify: () => Promise<T>): Promise<Verified<T>> {
  let result: T;
  try {
    result = await verify();
  } catch (err) {
    throw new AppError("WEBAUTHN_VERIFICATION_FAILED", `${what}: ${(err as Error).message}`, { cause: err });
  }
  if (!result.verified) throw new AppError("WEBAUTHN_VERIFICATION_FAILED", `${what}: not verified`);
  return result as Verified<T>;
}
