// The revocation feed: what src/domain/tokens/revocation.ts keeps in memory comes from here.
// Recent revocations are read by query (the catch-up and the polling backstop), and new ones
// arrive on a LISTEN connection of their own, fed by the triggers of the RevocationNotify
// migration on the channel declared in src/db/channels.ts.
import pg from "pg";
import { REVOCATION_CHANNEL } from "../db/channels.js";
import { databaseUrl, KEEPALIVE } from "../db/data-source.js";
import { rows, type Database, type Tx } from "./tx.js";

/** How the LISTEN connection names itself in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = "identity-revocation-listener";

export type RevocationEvent =
  | { readonly kind: "session"; readonly sessionId: string; readonly at: Date }
  | { readonly kind: "user"; readonly userId: string; readonly validAfter: Date; readonly status: string };

/** What a notification on the channel may carry: revocations, or a change to service accounts. */
export type FeedEvent = RevocationEvent | { readonly kind: "services" };

export interface RecentRevocations {
  readonly sessions: ReadonlyArray<{ readonly id: string; readonly revokedAt: Date }>;
  readonly users: ReadonlyArray<{ readonly id: string; readonly validAfter: Date; readonly status: string }>;
}

export interface RevocationHandlers {
  onEvent(event: RevocationEvent): void;
  /**
   * Service accounts, their keys or certificate identities changed (ServiceAccounts migration):
   * for the service-account directory, which follows the feed (src/domain/callers/directory.ts).
   */
  onServicesChanged?(): void;
  /** A notification that could not be read. */
  onMalformed(err: unknown): void;
  /** The connection ended after it listened (called once; not after close()). */
  onLost(err?: unknown): void;
}

export interface RevocationListener {
  /**
   * Resolves when PostgreSQL answers a trivial query on the LISTEN connection within `timeoutMs`:
   * every notification committed before the call has then been delivered (a backend sends pending
   * notifications before it reads the next command). Rejects otherwise, and the connection is
   * then lost (onLost).
   */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** How long opening the LISTEN connection (and the LISTEN itself) may take. */
const LISTEN_TIMEOUT_MS = 3_000;

export interface RevocationFeed {
  /**
   * Sessions revoked, and accounts whose tokens were invalidated, after `since`; service accounts
   * count as accounts with the id `service:<name>` (the sub of their service tokens).
   */
  recent(tx: Tx, since: Date): Promise<RecentRevocations>;
  /** Opens the LISTEN connection; resolves once it listens, rejects when it could not. */
  listen(handlers: RevocationHandlers): Promise<RevocationListener>;
}

/** The events in a notification payload (the triggers' json_build_object); none when it carries none. */
export function parseRevocation(payload: string): FeedEvent[] {
  const event = JSON.parse(payload) as { session?: string; at?: string; user?: string; after?: string | null; status?: string; services?: boolean };
  const events: FeedEvent[] = [];
  if (event.session && event.at) events.push({ kind: "session", sessionId: event.session, at: new Date(event.at) });
  if (event.user && event.after) events.push({ kind: "user", userId: event.user, validAfter: new Date(event.after), status: event.status ?? "active" });
  if (event.services === true) events.push({ kind: "services" });
  return events;
}

export function createRevocationFeed(db: Database): RevocationFeed {
  return {
    async recent(tx, since) {
      const [sessions, users] = await Promise.all([
        rows<{ id: string; revoked_at: Date }>(tx, `SELECT id, revoked_at FROM sessions WHERE revoked_at > $1`, [since]),
        rows<{ id: string; tokens_valid_after: Date; status: string }>(
          tx,
          `SELECT id::text, tokens_valid_after, status FROM users WHERE tokens_valid_after > $1
           UNION ALL
           SELECT 'service:' || name, tokens_valid_after, status FROM service_accounts WHERE tokens_valid_after > $1`,
          [since],
        ),
      ]);
      return {
        sessions: sessions.map((r) => ({ id: r.id, revokedAt: r.revoked_at })),
        users: users.map((r) => ({ id: r.id, validAfter: r.tokens_valid_after, status: r.status })),
      };
    },

    async listen(handlers) {
      const client = new pg.Client({
        connectionString: databaseUrl(db), application_name: LISTENER_APPLICATION_NAME, connectionTimeoutMillis: LISTEN_TIMEOUT_MS, ...KEEPALIVE,
      });
      // Not end() on a connection that stopped answering: the goodbye would never complete.
      const destroy = () => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      let state: "connecting" | "listening" | "ended" = "connecting";
      const lost = (err?: unknown) => {
        if (state !== "listening") return;
        state = "ended";
        client.removeAllListeners();
        client.on("error", () => {});
        destroy();
        handlers.onLost(err);
      };
      // An error listener from the start: pg emits 'error' as well as rejecting connect().
      client.on("error", (err) => lost(err));
      client.on("end", () => lost());
      client.on("notification", (message) => {
        try {
          for (const event of parseRevocation(message.payload ?? "{}")) {
            if (event.kind === "services") handlers.onServicesChanged?.();
            else handlers.onEvent(event);
          }
        } catch (err) {
          handlers.onMalformed(err);
        }
      });
      try {
        await client.connect();
        await client.query({ text: `LISTEN ${REVOCATION_CHANNEL}`, query_timeout: LISTEN_TIMEOUT_MS } as pg.QueryConfig);
      } catch (err) {
        state = "ended";
        client.removeAllListeners();
        client.on("error", () => {});
        destroy();
        throw err;
      }
      state = "listening";
      return {
        async ping(timeoutMs) {
          try {
            await client.query({ text: "SELECT 1", query_timeout: timeoutMs } as pg.QueryConfig);
          } catch (err) {
            lost(err);
            throw err;
          }
        },
        async close() {
          state = "ended";
          client.removeAllListeners();
          client.on("error", () => {});
          // A goodbye for a server that answers; a bounded wait for one that does not.
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([client.end().catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, 1_000)))]);
          clearTimeout(timer);
          destroy();
        },
      };
    },
  };
}
