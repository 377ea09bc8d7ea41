// Whether a signature-valid access token was revoked, answered from memory: VerifyToken makes
// no database round trip. Only revocations younger than an access token's lifetime matter
// (older ones cover tokens that have expired anyway), so each instance holds a small set:
//   - sessions revoked within the window (logout, RevokeSession, refresh-token reuse, ...);
//   - accounts whose tokens were invalidated within the window (tokens_valid_after: password
//     reset, deletion, disabling; a status change always sets tokens_valid_after).
// It stays fresh through PostgreSQL LISTEN/NOTIFY (triggers in the RevocationNotify
// migration; the connection and the queries are the store's revocation feed), revocations
// made by this instance are applied at once, a full reload runs periodically, and while the
// listener is down the reload runs every `fallbackPollMs`.
//
// Staleness (issue 19): the state is as fresh as the last moment it was known complete, the
// start of the last reload that succeeded or of the last heartbeat answered on the LISTEN
// connection (a heartbeat answered means every notification committed before it was delivered).
// While PostgreSQL does not answer, VerifyToken keeps answering from memory; past
// `maxStalenessMs` check() throws REVOCATIONS_STALE (UNAVAILABLE) rather than risk accepting a
// token revoked meanwhile. After an outage the state becomes fresh again only through a reload
// that succeeded (the polling backstop, or the catch-up after the LISTEN connection is back), so
// revocations made meanwhile on other instances are applied before the staleness clock resets.
// The clock of staleness is the process's (Date.now()), not the injected Clock: it measures how
// long this process has been cut off, and the hot path reads it as one number, no allocation.
import { AppError } from "../errors.js";
import type { RevocationEvent, RevocationListener, Store } from "../../store/index.js";
import type { Logger } from "../../logger.js";
import type { Clock } from "../clock.js";
import type { InactiveReason, TokenClaims } from "./claims.js";

/** A revocation this instance learned of (from any source), as WatchRevocations streams it. */
export type RevocationChange =
  | { readonly kind: "session"; readonly sessionId: string; readonly at: Date }
  | { readonly kind: "subject"; readonly subject: string; readonly validAfter: Date; readonly disabled: boolean };

export interface Revocations {
  /**
   * Why a signature-valid token is revoked, if it is; throws REVOCATIONS_STALE (UNAVAILABLE) when
   * the state is older than `maxStalenessMs`. A service token's subject
   * (`service:<name>`) is an account like a person's: the service-account triggers report a
   * disabled account under that id.
   */
  check(claims: TokenClaims): InactiveReason | undefined;
  /** Applies revocations made by this instance before the notification comes back. */
  sessionsRevoked(sessionIds: readonly string[], at: Date): void;
  userTokensInvalidated(userId: string, validAfter: Date, status: string): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Calls `listener` with every revocation that changes what this instance holds, whatever the
   * source (applied here, notified, or found by a reload); returns the unsubscribe function.
   */
  onChange(listener: (change: RevocationChange) => void): () => void;
  /** What is held now (within the retention window), for a WatchRevocations snapshot. */
  current(): { readonly sessions: ReadonlyMap<string, Date>; readonly subjects: ReadonlyMap<string, { readonly validAfter: Date; readonly disabled: boolean }> };
  /** How far back revocations are kept, in ms: the access-token lifetime and a minute. */
  readonly retentionMs: number;
  /** For tests and health: whether the LISTEN connection is up. */
  readonly listening: boolean;
  /** How old the revocation state is, in ms (0 until start()): for the gauge and /readyz. */
  ageMs(): number;
}

export interface RevocationSettings {
  readonly accessTokenTtlSec: number;
  readonly fullReloadMs?: number;
  readonly fallbackPollMs?: number;
  /** REVOCATION_MAX_STALENESS_MS: past this age check() fails closed (default 60000). */
  readonly maxStalenessMs?: number;
  /** How often the LISTEN connection is asked to answer (its answer keeps the state fresh; default 1000). */
  readonly heartbeatMs?: number;
}

interface UserState {
  readonly validAfter: Date;
  readonly status: string;
}

/** What revocations need of the store. */
export type RevocationsDb = Pick<Store, "direct" | "revocationFeed">;

export function createRevocations(db: RevocationsDb, clock: Clock, logger: Logger, settings: RevocationSettings): Revocations {
  const sessions = new Map<string, Date>();
  const users = new Map<string, UserState>();
  // Tokens live accessTokenTtl; a minute more covers clock skew and in-flight issuance.
  const windowMs = (settings.accessTokenTtlSec + 60) * 1000;
  const fullReloadMs = settings.fullReloadMs ?? 30_000;
  const fallbackPollMs = settings.fallbackPollMs ?? 500;
  const maxStalenessMs = settings.maxStalenessMs ?? 60_000;
  const heartbeatMs = settings.heartbeatMs ?? 1_000;
  // Date.now() values. Until start() nothing follows the feed, so nothing is stale.
  let freshAt = 0;
  let staleAt = Number.POSITIVE_INFINITY;
  let heartbeatTimer: NodeJS.Timeout | undefined;

  /** The state is complete as of `at` (a Date.now() taken before the query that proved it). */
  function freshAsOf(at: number): void {
    if (at <= freshAt) return;
    freshAt = at;
    staleAt = at + maxStalenessMs;
  }

  let listener: RevocationListener | undefined;
  let listening = false;
  let stopped = false;
  let reloadTimer: NodeJS.Timeout | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reconnectDelayMs = 250;

  function cutoff(): Date {
    return new Date(clock.now().getTime() - windowMs);
  }

  function prune(): void {
    const limit = cutoff().getTime();
    for (const [id, at] of sessions) if (at.getTime() < limit) sessions.delete(id);
    for (const [id, state] of users) if (state.validAfter.getTime() < limit) users.delete(id);
  }

  const listeners = new Set<(change: RevocationChange) => void>();
  function emit(change: RevocationChange): void {
    for (const listener of listeners) listener(change);
  }

  function applyUser(userId: string, validAfter: Date, status: string): void {
    const current = users.get(userId);
    if (!current || current.validAfter <= validAfter) {
      users.set(userId, { validAfter, status });
      if (!current || current.validAfter.getTime() !== validAfter.getTime() || current.status !== status) {
        emit({ kind: "subject", subject: userId, validAfter, disabled: status !== "active" });
      }
    }
  }

  function applySession(sessionId: string, at: Date): void {
    const known = sessions.get(sessionId);
    sessions.set(sessionId, at);
    if (known === undefined) emit({ kind: "session", sessionId, at });
  }

  async function reload(): Promise<void> {
    const startedAt = Date.now();
    const recent = await db.revocationFeed.recent(db.direct, cutoff());
    // Merged, never replaced: a revocation applied locally while the query ran must survive.
    for (const row of recent.sessions) applySession(row.id, row.revokedAt);
    for (const row of recent.users) applyUser(row.id, row.validAfter, row.status);
    prune();
    freshAsOf(startedAt);
  }

  /** While listening: the heartbeat keeps the state fresh; a heartbeat not answered loses the listener. */
  function scheduleHeartbeat(): void {
    clearTimeout(heartbeatTimer);
    if (stopped || !listener) return;
    const current = listener;
    heartbeatTimer = setTimeout(() => {
      const sentAt = Date.now();
      // A generous timeout: an unanswered heartbeat stops the state growing fresher at once, and
      // losing the listener early on a busy server would only add the polling's queries to its load.
      current.ping(HEARTBEAT_TIMEOUT_MS).then(
        () => {
          if (listener !== current) return;
          freshAsOf(sentAt);
          scheduleHeartbeat();
        },
        // The feed reports the connection lost (onLost), which starts polling and reconnecting.
        () => {},
      );
    }, heartbeatMs);
    heartbeatTimer.unref();
  }

  function scheduleReload(): void {
    clearTimeout(reloadTimer);
    if (stopped) return;
    reloadTimer = setTimeout(() => {
      reload()
        .catch((err: unknown) => logger.warn({ err }, "revocation reload failed"))
        .finally(scheduleReload);
    }, listening ? fullReloadMs : fallbackPollMs);
    reloadTimer.unref();
  }

  function onEvent(event: RevocationEvent): void {
    if (event.kind === "session") applySession(event.sessionId, event.at);
    else applyUser(event.userId, event.validAfter, event.status);
  }

  function onListenerLost(err?: unknown): void {
    if (!listening && listener === undefined) return;
    listening = false;
    const lost = listener;
    listener = undefined;
    clearTimeout(heartbeatTimer);
    lost?.close().catch(() => {});
    if (stopped) return;
    logger.warn({ err }, "revocation listener lost; polling until it reconnects");
    scheduleReload();
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => void connect(), reconnectDelayMs);
    reconnectTimer.unref();
    reconnectDelayMs = Math.min(reconnectDelayMs * 2, 5_000);
  }

  async function connect(): Promise<void> {
    if (stopped) return;
    let opened: RevocationListener | undefined;
    try {
      opened = await db.revocationFeed.listen({
        onEvent,
        onMalformed: (err) => logger.warn({ err }, "bad revocation notification"),
        onLost: (err) => onListenerLost(err),
      });
      if (stopped) {
        await opened.close();
        return;
      }
      listener = opened;
      listening = true;
      reconnectDelayMs = 250;
      // Catch up on whatever happened while nobody listened.
      await reload();
      scheduleReload();
      scheduleHeartbeat();
    } catch (err) {
      // Could not listen (or catch up): treated as a lost listener, so polling and reconnecting start.
      listener = opened ?? { ping: async () => {}, close: async () => {} };
      onListenerLost(err);
    }
  }

  return {
    get listening() {
      return listening;
    },
    check(claims) {
      // The hot path's only cost here: one comparison (issue 19).
      if (Date.now() > staleAt) throw staleError();
      const user = users.get(claims.sub);
      if (user) {
        if (user.status !== "active") return "USER_DISABLED";
        // A person's token: whole seconds (`iat` has no finer precision; same-second tokens fall to
        // the session check). A service token has no session, and its `iat` keeps milliseconds.
        if (claims.kind === "service" ? Math.round(claims.iat * 1000) < user.validAfter.getTime() : claims.iat < Math.floor(user.validAfter.getTime() / 1000)) return "TOKEN_REVOKED";
      }
      if (claims.kind === "user" && sessions.has(claims.sid)) return "SESSION_REVOKED";
      return undefined;
    },
    sessionsRevoked(ids, at) {
      for (const id of ids) applySession(id, at);
    },
    userTokensInvalidated: applyUser,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    current() {
      prune();
      const subjects = new Map<string, { validAfter: Date; disabled: boolean }>();
      for (const [id, state] of users) subjects.set(id, { validAfter: state.validAfter, disabled: state.status !== "active" });
      return { sessions: new Map(sessions), subjects };
    },
    retentionMs: windowMs,
    ageMs: () => (freshAt === 0 ? 0 : Date.now() - freshAt),
    async start() {
      await reload();
      await connect();
      if (!listening) scheduleReload();
    },
    async stop() {
      stopped = true;
      clearTimeout(reloadTimer);
      clearTimeout(heartbeatTimer);
      clearTimeout(reconnectTimer);
      const open = listener;
      listener = undefined;
      listening = false;
      await open?.close().catch(() => {});
    },
  };
}

/** How long a heartbeat on the LISTEN connection may go unanswered before the listener counts as lost. */
const HEARTBEAT_TIMEOUT_MS = 5_000;

function staleError(): AppError {
  return new AppError("REVOCATIONS_STALE", "revocation state older than REVOCATION_MAX_STALENESS_MS: PostgreSQL has not answered", { retryAfterMs: 1_000 });
}
