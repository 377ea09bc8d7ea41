// What TokenService.WatchRevocations streams: the keys that verify tokens and every revocation
// that can still matter, so that a backend verifies tokens offline and still refuses a logged-out
// session within a second. This instance numbers each change it learns of (revocation.ts tells
// it, whatever the source; the key set is compared every KEY_CHECK_MS) and keeps the last
// BACKLOG of them: a client that reconnects with its cursor gets what it missed, or a snapshot
// when the cursor is not this instance's (another replica, a restart) or is too old.
import { randomBytes } from "node:crypto";
import type { Clock } from "../clock.js";
import type { RevocationChange, Revocations } from "./revocation.js";
import type { PublicJwk, SigningKeys } from "./signing-keys.js";

export type StreamChange =
  | RevocationChange
  | { readonly kind: "keyPublished"; readonly key: PublicJwk }
  | { readonly kind: "keyRetired"; readonly kid: string };

export interface NumberedChange {
  readonly cursor: string;
  readonly change: StreamChange;
}

export interface RevocationSnapshot {
  readonly cursor: string;
  readonly sessions: ReadonlyArray<{ readonly sessionId: string; readonly at: Date }>;
  readonly subjects: ReadonlyArray<{ readonly subject: string; readonly validAfter: Date; readonly disabled: boolean }>;
  readonly keys: readonly PublicJwk[];
  readonly retentionMs: number;
}

/** One client's view: changes arrive through `next`, in order, after what it was given first. */
export interface Subscription {
  /** The snapshot or, when `cursor` can be resumed, the changes after it. */
  readonly start: { readonly snapshot: RevocationSnapshot } | { readonly missed: readonly NumberedChange[] };
  /**
   * Resolves with the changes since the last call (at least one), or with `[]` after `waitMs`,
   * or `undefined` once the stream must end (shutdown, or the client fell BACKLOG changes behind).
   */
  next(waitMs: number): Promise<readonly NumberedChange[] | undefined>;
  /** The cursor of the last change handed out. */
  readonly cursor: string;
  /** Why the subscription ended, when it did. */
  readonly ended: "shutdown" | "behind" | undefined;
  close(): void;
}

export interface RevocationStream {
  subscribe(cursor: string | undefined): Subscription;
  start(): void;
  /** Ends every subscription (graceful shutdown: streams end with OK) and stops the key check. */
  stop(): void;
  /** Subscriptions open now. */
  readonly subscribers: number;
}

/** Changes kept for resuming (and the most one subscriber may have waiting). */
export const BACKLOG = 10_000;
const KEY_CHECK_MS = 1_000;

export function createRevocationStream(revocations: Revocations, keys: Pick<SigningKeys, "jwks">, clock: Clock): RevocationStream {
  // Cursors are `<epoch>.<sequence>`: the epoch names this instance's run, so a cursor from
  // another replica or an earlier run is never mistaken for one of ours.
  const epoch = `${clock.now().getTime().toString(36)}${randomBytes(4).toString("hex")}`;
  let sequence = 0;
  const backlog: NumberedChange[] = [];
  const subscriptions = new Set<SubscriptionState>();
  let knownKeys = new Map(keys.jwks().map((k) => [k.kid, k]));
  let keyTimer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  const cursorOf = (n: number) => `${epoch}.${n}`;

  function record(change: StreamChange): void {
    const numbered = { cursor: cursorOf(++sequence), change };
    backlog.push(numbered);
    if (backlog.length > BACKLOG) backlog.splice(0, backlog.length - BACKLOG);
    for (const s of subscriptions) s.push(numbered);
  }

  function checkKeys(): void {
    const now = new Map(keys.jwks().map((k) => [k.kid, k]));
    for (const [kid, key] of now) if (!knownKeys.has(kid)) record({ kind: "keyPublished", key });
    for (const kid of knownKeys.keys()) if (!now.has(kid)) record({ kind: "keyRetired", kid });
    knownKeys = now;
  }

  /** The changes after `cursor`, or undefined when it cannot be resumed here. */
  function missedSince(cursor: string): NumberedChange[] | undefined {
    const match = /^([0-9a-z]+)\.(\d{1,15})$/.exec(cursor);
    if (!match || match[1] !== epoch) return undefined;
    const seen = Number(match[2]);
    if (seen > sequence) return undefined;
    const oldest = sequence - backlog.length; // the last change no longer kept
    if (seen < oldest) return undefined;
    return backlog.slice(backlog.length - (sequence - seen));
  }

  function snapshot(): RevocationSnapshot {
    checkKeys();
    const { sessions, subjects } = revocations.current();
    return {
      cursor: cursorOf(sequence),
      sessions: [...sessions].map(([sessionId, at]) => ({ sessionId, at })),
      subjects: [...subjects].map(([subject, state]) => ({ subject, ...state })),
      keys: [...knownKeys.values()],
      retentionMs: revocations.retentionMs,
    };
  }

  class SubscriptionState implements Subscription {
    readonly start: Subscription["start"];
    cursor: string;
    ended: Subscription["ended"];
    private pending: NumberedChange[] = [];
    private wake: (() => void) | undefined;

    constructor(resumeFrom: string | undefined) {
      const missed = resumeFrom === undefined ? undefined : missedSince(resumeFrom);
      if (missed) {
        this.start = { missed };
        this.cursor = missed.length > 0 ? missed[missed.length - 1]!.cursor : resumeFrom!;
      } else {
        const snap = snapshot();
        this.start = { snapshot: snap };
        this.cursor = snap.cursor;
      }
    }

    push(change: NumberedChange): void {
      if (this.ended) return;
      if (this.pending.length >= BACKLOG) return this.end("behind");
      this.pending.push(change);
      this.wake?.();
    }

    end(why: "shutdown" | "behind"): void {
      this.ended ??= why;
      subscriptions.delete(this);
      this.wake?.();
    }

    async next(waitMs: number): Promise<readonly NumberedChange[] | undefined> {
      if (this.pending.length === 0 && !this.ended) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
      if (this.ended) return undefined;
      const changes = this.pending;
      this.pending = [];
      if (changes.length > 0) this.cursor = changes[changes.length - 1]!.cursor;
      return changes;
    }

    close(): void {
      subscriptions.delete(this);
    }
  }

  return {
    subscribe(cursor) {
      const subscription = new SubscriptionState(cursor === "" ? undefined : cursor);
      subscriptions.add(subscription);
      return subscription;
    },
    start() {
      unsubscribe ??= revocations.onChange(record);
      if (!keyTimer) {
        keyTimer = setInterval(checkKeys, KEY_CHECK_MS);
        keyTimer.unref();
      }
    },
    stop() {
      clearInterval(keyTimer);
      keyTimer = undefined;
      unsubscribe?.();
      unsubscribe = undefined;
      for (const s of [...subscriptions]) s.end("shutdown");
    },
    get subscribers() {
      return subscriptions.size;
    },
  };
}
