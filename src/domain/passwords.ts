// Password rules and hashing: argon2id with parameters from config, NFKC, 8..128 code points,
// common passwords refused, unknown users still pay one hash.
import argon2 from "argon2";
import pLimit from "p-limit";
import { dictionary } from "@zxcvbn-ts/language-common";
import { AppError, type FieldViolation } from "./errors.js";

export interface Argon2Params {
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/**
 * Hashing runs on libuv's thread pool (argon2 is asynchronous), never on the event loop. At
 * most `maxConcurrent` hashes run at once, so a login storm cannot take every pool thread or
 * core from the rest of the service; up to `maxQueue` more wait, beyond that a call is shed
 * at once with RESOURCE_EXHAUSTED rather than timing out.
 */
export interface HashingLimits {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
}

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 128;

const commonPasswords: ReadonlySet<string> = new Set(
  (dictionary["passwords-common"] as string[]).map((p) => p.toLowerCase()),
);

export function normalizePassword(password: string): string {
  return password.normalize("NFKC");
}

/** Returns the violation of `field`, or undefined when the password is acceptable. */
export function checkPassword(field: string, password: string): FieldViolation | undefined {
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < MIN_PASSWORD_LENGTH) {
    return { field, reason: "PASSWORD_TOO_SHORT", description: `must be at least ${MIN_PASSWORD_LENGTH} characters` };
  }
  if (length > MAX_PASSWORD_LENGTH) {
    return { field, reason: "PASSWORD_TOO_LONG", description: `must be at most ${MAX_PASSWORD_LENGTH} characters` };
  }
  if (commonPasswords.has(normalized.toLowerCase())) {
    return { field, reason: "PASSWORD_TOO_COMMON", description: "is too common; choose another" };
  }
  return undefined;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** The stored hash used other parameters than the configured ones. */
  readonly needsRehash: boolean;
}

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string | null, password: string): Promise<VerifyResult>;
}

export function createPasswordHasher(params: Argon2Params, limits: HashingLimits): PasswordHasher {
  const limit = pLimit(limits.maxConcurrent);
  function gated<T>(work: () => Promise<T>): Promise<T> {
    if (limit.pendingCount >= limits.maxQueue) {
      return Promise.reject(new AppError("OVERLOADED", `password hashing queue full (${limit.pendingCount} waiting)`, { retryAfterMs: 1_000 }));
    }
    return limit(work);
  }
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  } as const;
  // Verified against when the account is unknown or has no password, so that every
  // failed login costs one hash whether or not the account exists.
  let dummyHash: Promise<string> | undefined;

  return {
    hash: (password) => gated(() => argon2.hash(normalizePassword(password), options)),
    async verify(hash, password) {
      const input = normalizePassword(password);
      if (hash === null) {
        dummyHash ??= argon2.hash("dummy password for timing", options);
        const dummy = await dummyHash;
        await gated(() => argon2.verify(dummy, input));
        return { ok: false, needsRehash: false };
      }
      let ok = false;
      try {
        ok = await gated(() => argon2.verify(hash, input));
      } catch (err) {
        if (err instanceof AppError) throw err;
        ok = false;
      }
      return { ok, needsRehash: ok && argon2.needsRehash(hash, options) };
    },
  };
}
