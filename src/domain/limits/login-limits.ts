// Limits on failed password logins, on the shared mechanism of rate-limits.ts. Every attempt
// takes a slot first and a successful one gives it back, so even concurrent guesses on several
// instances cannot exceed a limit. A limited attempt is refused before the password is checked
// (RESOURCE_EXHAUSTED with RetryInfo) and does not extend the block.
//
// Why these three:
//   - per account, whoever tries: a hard ceiling (at most 100 an hour, NIST SP 800-63B 5.2.2),
//     the only limit that lets others lock an account, and only for that hour at most;
//   - per account and client address: exponential backoff after a few failures, so one client
//     guesses slowly while the owner, signing in from elsewhere, is not slowed at all;
//   - per client address across accounts: credential stuffing from one place.
// An unknown identifier is limited exactly like an account (keyed by the identifier), so the
// limits do not tell whether an account exists.
import type { LoginLimitConfig } from "../../config.js";
import type { Identifier } from "../accounts/identifiers.js";
import { clientAddressKey, type RateRule } from "./rate-limits.js";

const HOUR_MS = 3_600_000;
/** Failures per account and client address inside BACKOFF_WINDOW_MS that need no wait. */
export const LOGIN_FREE_FAILURES = 5;
const BACKOFF_WINDOW_MS = 15 * 60_000;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 5 * 60_000;

/** Whose failures they are: the account when one matches, else the identifier as given. */
export function loginSubject(userId: string | undefined, identifier: Identifier | undefined, raw: string): string {
  if (userId !== undefined) return `user:${userId}`;
  if (identifier) return `${identifier.kind}:${identifier.value}`; // canonical already (identifiers.ts)
  return `raw:${raw.trim().toLowerCase().slice(0, 256)}`;
}

export function loginFailureRules(subject: string, ip: string, config: LoginLimitConfig): RateRule[] {
  const address = clientAddressKey(ip);
  return [
    { key: `login-fail:account:${subject}`, limit: config.maxFailuresPerAccountPerHour, windowMs: HOUR_MS },
    {
      key: `login-fail:account-ip:${subject}|${address}`,
      limit: config.maxFailuresPerAccountPerHour,
      windowMs: BACKOFF_WINDOW_MS,
      backoff: { free: LOGIN_FREE_FAILURES, baseMs: BACKOFF_BASE_MS, maxMs: BACKOFF_MAX_MS },
    },
    { key: `login-fail:ip:${address}`, limit: config.maxFailuresPerIpPerHour, windowMs: HOUR_MS },
  ];
}
