// Whether a signature-valid access token was revoked, answered from memory: VerifyToken makes
// no database round trip. Only revocations younger than an access token's lifetime matter
// (older ones cover tokens that have expired anyway), so each instance holds a small set:
//   - sessions revoked within the window (logout, RevokeSession, refresh-token reuse, ...);
//   - accounts whose tokens were invalidated within the window (tokens_valid_after: password
//     reset, deletion, disabling; a status change always sets tokens_valid_after).
// It stays fresh through PostgreSQL LISTEN/NOTIFY (triggers in the RevocationNotify
// migration), revocations made by this instance are applied at once, a full reload runs
// periodically, and while the listener is down the reload runs every `fallbackPollMs`.
import pg from "pg";
import type { DataSource } from "typeorm";
import type { Logger } from "../../logger.js";
import type { Clock } from "../clock.js";
import type { AccessClaims, InactiveReason } from "./access-tokens.js";

export const REVOCATION_CHANNEL = "identity_revocations";
export const LISTENER_APPLICATION_NAME = "identity-revocation-listener";

export interface Revocations {
  check(claims: AccessClaims): InactiveReason | undefined;
  /** Applies revocations made by this instance before the notification comes back. */
  sessionsRevoked(sessionIds: readonly string[], at: Date): void;
  userTokensInvalidated(userId: string, validAfter: Date, status: string): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** For tests and health: whether the LISTEN connection is up. */
  readonly listening: boolean;
}

export interface RevocationSettings {
  readonly databaseUrl: string;
  readonly accessTokenTtlSec: number;
  readonly fullReloadMs?: number;
  readonly fallbackPollMs?: number;
}

interface UserState {
  readonly validAfter: Date;
  readonly status: string;
}

export function createRevocations(db: DataSource, clock: Clock, logger: Logger, settings: RevocationSettings): Revocations {
  const sessions = new Map<string, Date>();
  const users = new Map<string, UserState>();
  // Tokens live accessTokenTtl; a minute more covers clock skew and in-flight issuance.
  const windowMs = (settings.accessTokenTtlSec + 60) * 1000;
  const fullReloadMs = settings.fullReloadMs ?? 30_000;
  const fallbackPollMs = settings.fallbackPollMs ?? 500;

  let listener: pg.Client | undefined;
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

  function applyUser(userId: string, validAfter: Date, status: string): void {
    const current = users.get(userId);
    if (!current || current.validAfter <= validAfter) users.set(userId, { validAfter, status });
  }

  async function reload(): Promise<void> {
    const since = cutoff();
    const [revokedSessions, invalidatedUsers] = await Promise.all([
      db.query(`SELECT id, revoked_at FROM sessions WHERE revoked_at > $1`, [since]) as Promise<Array<{ id: string; revoked_at: Date }>>,
      db.query(`SELECT id, tokens_valid_after, status FROM users WHERE tokens_valid_after > $1`, [since]) as Promise<
        Array<{ id: string; tokens_valid_after: Date; status: string }>
      >,
    ]);
    // Merged, never replaced: a revocation applied locally while the query ran must survive.
    for (const row of revokedSessions) sessions.set(row.id, row.revoked_at);
    for (const row of invalidatedUsers) applyUser(row.id, row.tokens_valid_after, row.status);
    prune();
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

  function onNotification(message: pg.Notification): void {
    try {
      const event = JSON.parse(message.payload ?? "{}") as { session?: string; at?: string; user?: string; after?: string | null; status?: string };
      if (event.session && event.at) sessions.set(event.session, new Date(event.at));
      if (event.user && event.after) applyUser(event.user, new Date(event.after), event.status ?? "active");
    } catch (err) {
      logger.warn({ err }, "bad revocation notification");
    }
  }

  function onListenerLost(err?: unknown): void {
    if (!listening && listener === undefined) return;
    listening = false;
    listener?.removeAllListeners();
    listener?.end().catch(() => {});
    listener = undefined;
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
    const client = new pg.Client({ connectionString: settings.databaseUrl, application_name: LISTENER_APPLICATION_NAME });
    client.on("error", (err) => onListenerLost(err));
    client.on("end", () => onListenerLost());
    client.on("notification", onNotification);
    try {
      await client.connect();
      await client.query(`LISTEN ${REVOCATION_CHANNEL}`);
      listener = client;
      listening = true;
      reconnectDelayMs = 250;
      // Catch up on whatever happened while nobody listened.
      await reload();
      scheduleReload();
    } catch (err) {
      client.removeAllListeners();
      await client.end().catch(() => {});
      listener = client;
      onListenerLost(err);
    }
  }

  return {
    get listening() {
      return listening;
    },
    check(claims) {
      const user = users.get(claims.sub);
      if (user) {
        if (user.status !== "active") return "USER_DISABLED";
        // Whole seconds: `iat` has no finer precision; same-second tokens fall to the session check.
        if (claims.iat < Math.floor(user.validAfter.getTime() / 1000)) return "TOKEN_REVOKED";
      }
      if (sessions.has(claims.sid)) return "SESSION_REVOKED";
      return undefined;
    },
    sessionsRevoked(ids, at) {
      for (const id of ids) sessions.set(id, at);
    },
    userTokensInvalidated: applyUser,
    async start() {
      await reload();
      await connect();
      if (!listening) scheduleReload();
    },
    async stop() {
      stopped = true;
      clearTimeout(reloadTimer);
      clearTimeout(reconnectTimer);
      const client = listener;
      listener = undefined;
      listening = false;
      client?.removeAllListeners();
      client?.on("error", () => {});
      await client?.end().catch(() => {});
    },
  };
}
