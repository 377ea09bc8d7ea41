// Password rules and hashing: argon2id with parameters from config, NFKC, 8..128 code points,
// common passwords refused, unknown users still pay one hash.
import argon2 from "argon2";
import { dictionary } from "@zxcvbn-ts/language-common";
import { AppError, type FieldViolation } from "../errors.js";
import { clientAddressKey } from "../limits/rate-limits.js";

export interface Argon2Params {
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** argon2id's cost parameters, as the argon2 package names them. */
export interface Argon2Options {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

/**
 * What runs argon2id: in this process (`inlineArgon2`, on libuv's thread pool) or in a
 * hashing process of its own at a lowered priority (src/hashing/argon2-process.ts).
 */
export interface Argon2Engine {
  hash(password: string, options: Argon2Options): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  close(): Promise<void>;
}

export const inlineArgon2: Argon2Engine = {
  hash: (password, options) => argon2.hash(password, { type: argon2.argon2id, ...options }),
  verify: (hash, password) => argon2.verify(hash, password),
  close: async () => {},
};

/**
 * Hashing never runs on the event loop (argon2 is asynchronous, on another thread or process). At
 * most `maxConcurrent` hashes run at once, so a login storm cannot take every pool thread or
 * core from the rest of the service; up to `maxQueue` more wait, beyond that a call is shed
 * at once with RESOURCE_EXHAUSTED rather than timing out.
 *
 * Hashing is shared by everyone, so it is admitted fairly by client address (grouped as the
 * rate limits group them, IPv6 by /64): waiting hashes are started round-robin between
 * addresses, and once the queue is half full an address already holding its share
 * (`perClientShare`) of running and waiting hashes is shed at once. One address flooding
 * sign-ups is shed at its share while other people's logins still find room and start soon;
 * an idle service still serves one busy address (a proxy, a backend) beyond its share.
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

/**
 * `clientIp` is the address of the person the hash is for (ClientMeta.ip); calls without one
 * are each treated as a client of their own.
 */
export interface PasswordHasher {
  hash(password: string, clientIp?: string): Promise<string>;
  verify(hash: string | null, password: string, clientIp?: string): Promise<VerifyResult>;
  /** Hashes waiting for a slot now (the metrics' identity_password_hashing_queue_depth). */
  queueDepth(): number;
}

/** Hashes one client address may hold running or waiting: a small share of the queue. */
export function perClientShare(limits: HashingLimits): number {
  return Math.max(2, Math.floor(limits.maxQueue / 8));
}

/** Admits work by key (see createFairGate); `waiting()` is how much waits for a slot now. */
export type FairGate = (<T>(key: unknown, work: () => Promise<T>) => Promise<T>) & { readonly waiting: () => number };

/** Runs work at most `maxConcurrent` at a time, admitting and starting it fairly by key. */
export function createFairGate(limits: HashingLimits): FairGate {
  const share = perClientShare(limits);
  const pressure = Math.floor(limits.maxQueue / 2);
  let running = 0;
  let waiting = 0;
  /** Per key, its hashes running or waiting. */
  const held = new Map<unknown, number>();
  /** Waiting work per key; Map order is the round-robin order of the keys. */
  const queues = new Map<unknown, Array<() => void>>();

  function release(key: unknown): void {
    running--;
    const n = (held.get(key) ?? 1) - 1;
    if (n === 0) held.delete(key);
    else held.set(key, n);
    // Start the next key's turn, then move that key to the back of the line.
    const next = queues.entries().next();
    if (next.done) return;
    const [nextKey, queue] = next.value;
    queues.delete(nextKey);
    const start = queue.shift()!;
    if (queue.length > 0) queues.set(nextKey, queue);
    waiting--;
    running++;
    start();
  }

  const admit = <T>(key: unknown, work: () => Promise<T>): Promise<T> => {
    const mine = held.get(key) ?? 0;
    if (mine >= share && waiting >= pressure) {
      return Promise.reject(new AppError("OVERLOADED", `password hashing busy (${waiting} waiting): client ${String(key)} already holds its share of ${share}`, {
        retryAfterMs: 1_000,
      }));
    }
    const run = (): Promise<T> => {
      let started: Promise<T>;
      try {
        started = work();
      } catch (err) {
        started = Promise.reject(err); // work that throws at once still gives its place back
      }
      return started.finally(() => release(key));
    };
    if (running < limits.maxConcurrent) {
      held.set(key, mine + 1);
      running++;
      return run();
    }
    if (waiting >= limits.maxQueue) {
      return Promise.reject(new AppError("OVERLOADED", `password hashing queue full (${waiting} waiting)`, { retryAfterMs: 1_000 }));
    }
    held.set(key, mine + 1);
    waiting++;
    return new Promise<T>((resolve, reject) => {
      const queue = queues.get(key) ?? [];
      queue.push(() => run().then(resolve, reject));
      queues.set(key, queue);
    });
  };
  return Object.assign(admit, { waiting: () => waiting });
}

/** What the hasher did, for the metrics: a hash or verification run, or one shed at once. */
export type HashingEvent = "hash" | "verify" | "shed";

export function createPasswordHasher(
  params: Argon2Params,
  limits: HashingLimits,
  observe: (event: HashingEvent) => void = () => {},
  engine: Argon2Engine = inlineArgon2,
): PasswordHasher {
  const gate = createFairGate(limits);
  // A call without an address is a client of its own: it is neither capped nor grouped.
  const gated = <T>(clientIp: string | undefined, work: () => Promise<T>, event: "hash" | "verify"): Promise<T> =>
    gate(clientIp === undefined ? Symbol("unattributed") : clientAddressKey(clientIp), () => {
      observe(event);
      return work();
    }).catch((err: unknown) => {
      if (err instanceof AppError && err.reason === "OVERLOADED") observe("shed");
      throw err;
    });
  const options: Argon2Options = {
    memoryCost: params.memoryKiB,
    timeCost: params.iterations,
    parallelism: params.parallelism,
  };
  // Verified against when the account is unknown or has no password, so that every
  // failed login costs one hash whether or not the account exists.
  let dummyHash: Promise<string> | undefined;

  return {
    queueDepth: () => gate.waiting(),
    hash: (password, clientIp) => gated(clientIp, () => engine.hash(normalizePassword(password), options), "hash"),
    async verify(hash, password, clientIp) {
      const input = normalizePassword(password);
      if (hash === null) {
        dummyHash ??= engine.hash("dummy password for timing", options);
        const dummy = await dummyHash;
        await gated(clientIp, () => engine.verify(dummy, input), "verify");
        return { ok: false, needsRehash: false };
      }
      let ok = false;
      try {
        ok = await gated(clientIp, () => engine.verify(hash, input), "verify");
      } catch (err) {
        if (err instanceof AppError) throw err;
        ok = false;
      }
      return { ok, needsRehash: ok && argon2.needsRehash(hash, options) };
    },
  };
}
