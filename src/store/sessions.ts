// Sessions and their refresh-token families. Check-and-act happens in SQL, never in JavaScript:
// spending a refresh token and revoking a family are one conditional statement each.
import { RefreshTokenEntity, SessionEntity, type RefreshTokenRow, type SessionRow } from "../db/entities/session.js";
import { guarded, managerOf, rows, type Tx } from "./tx.js";
import { live } from "./users.js";

export type { RefreshTokenRow, SessionRow };

export interface NewSessionRow {
  readonly userId: string;
  readonly amr: readonly string[];
  readonly userAgent: string;
  readonly ipAddress: string;
  readonly now: Date;
  readonly absoluteExpiresAt: Date;
}

/** A session touched by a refresh, with its owner's claims for the next access token. */
export interface RefreshedSession {
  readonly userId: string;
  readonly amr: string[];
  readonly absoluteExpiresAt: Date;
  /** When the session last proved its factors: its tokens' `auth_time`. */
  readonly authTime: Date;
  readonly role: string;
  readonly username: string | null;
}

export type RotationOutcome =
  | { readonly kind: "rotated"; readonly sessionId: string; readonly session: RefreshedSession; readonly nextExpiresAt: Date }
  | { readonly kind: "ended" }
  | { readonly kind: "unusable" };

/** A refresh token that could not be spent, as far as it is known. */
export interface KnownRefreshToken {
  readonly sessionId: string;
  readonly usedAt: Date | null;
  readonly userId: string;
  /** The session is neither revoked nor expired, and its account is live. */
  readonly live: boolean;
}

/** Which sessions a revocation ends (always only those not revoked yet). */
export type SessionSelector =
  | { readonly kind: "one"; readonly sessionId: string; readonly userId: string }
  | { readonly kind: "user"; readonly userId: string; readonly exceptSessionId?: string }
  /** The family of a refresh token spent at or before `spentBefore` (reuse outside the grace window). */
  | { readonly kind: "reused"; readonly sessionId: string; readonly tokenHash: Buffer; readonly spentBefore: Date };

export interface SessionPageCursor {
  readonly time: Date;
  readonly id: string;
}

/** A session whose factors were proven again (Reauthenticate). */
export interface ReauthenticatedSession {
  readonly absoluteExpiresAt: Date;
  readonly refreshExpiresAt: Date;
}

export interface SessionStore {
  /** Creates a session; returns its id. */
  insert(tx: Tx, session: NewSessionRow): Promise<string>;
  insertRefreshToken(tx: Tx, sessionId: string, tokenHash: Buffer, expiresAt: Date): Promise<void>;
  /**
   * A refresh in one statement: spends `tokenHash` (a live token of a live session, once), records
   * the refresh on its session and stores the next token `nextHash`, expiring at `nextExpiresAt`
   * or with the session. A token of an ended session is refused without being spent, so a second
   * try is not "reuse".
   * "unusable": nothing was spent; "ended": the token was spent but its session ended meanwhile.
   */
  rotateRefreshToken(tx: Tx, tokenHash: Buffer, nextHash: Buffer, now: Date, nextExpiresAt: Date): Promise<RotationOutcome>;
  findRefreshToken(tx: Tx, tokenHash: Buffer, now: Date): Promise<KnownRefreshToken | undefined>;
  /** Ends the selected sessions; returns the ids of those it ended. */
  revoke(tx: Tx, selector: SessionSelector, reason: string, now: Date): Promise<string[]>;
  /** The session (and its owner) of a refresh token, spent or not. */
  findByRefreshToken(tx: Tx, tokenHash: Buffer): Promise<{ sessionId: string; userId: string } | undefined>;
  /**
   * Renews a live session of `userId`: `auth_time` becomes `now`, `amr` what was just proven,
   * every unspent refresh token of its family is spent and `nextHash` becomes the next one
   * (expiring at `nextExpiresAt` or with the session). Undefined when the session is not live.
   */
  reauthenticate(tx: Tx, sessionId: string, userId: string, amr: readonly string[], nextHash: Buffer, now: Date, nextExpiresAt: Date): Promise<ReauthenticatedSession | undefined>;
  /** Live sessions of `userId` that still have a usable refresh token, newest first, at most `limit`. */
  listActive(tx: Tx, userId: string, now: Date, limit: number, after?: SessionPageCursor): Promise<SessionRow[]>;
}

export const sessionStore: SessionStore = {
  async insert(tx, session) {
    const manager = managerOf(tx);
    const saved = await guarded(() => manager.save(SessionEntity, manager.create(SessionEntity, {
      userId: session.userId,
      amr: [...session.amr],
      userAgent: session.userAgent,
      ipAddress: session.ipAddress,
      lastRefreshAt: session.now,
      authTime: session.now,
      absoluteExpiresAt: session.absoluteExpiresAt,
      revokedAt: null,
      revokeReason: null,
      createdAt: session.now,
    })));
    return saved.id;
  },

  async insertRefreshToken(tx, sessionId, tokenHash, expiresAt) {
    await guarded(() => managerOf(tx).insert(RefreshTokenEntity, { sessionId, tokenHash, expiresAt, usedAt: null }));
  },

  async rotateRefreshToken(tx, tokenHash, nextHash, now, nextExpiresAt) {
    // One statement, one round trip, no transaction to open: every part sees the same snapshot.
    // `spent` is the single-use guard (of N concurrent refreshes with one token exactly one spends
    // it, the others wait on its row and then find used_at set); `touched` re-checks the session and its owner under the row lock (a logout
    // or a disable committed meanwhile leaves it empty: the token stays spent, nothing is issued);
    // `issued` stores the next token only for a touched session.
    const [row] = await rows<{
      spent_session: string;
      user_id: string | null;
      amr: string[] | null;
      absolute_expires_at: Date | null;
      auth_time: Date | null;
      role: string | null;
      username: string | null;
      next_expires_at: Date | null;
    }>(tx,
      `WITH spent AS (
         UPDATE refresh_tokens rt SET used_at = $2 WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > $2
         AND EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id = rt.session_id AND s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND ${live("u")})
         RETURNING rt.session_id
       ), touched AS (
         UPDATE sessions s SET last_refresh_at = $2 FROM users u, spent
         WHERE s.id = spent.session_id AND u.id = s.user_id AND s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND ${live("u")}
         RETURNING s.id, s.user_id, s.amr, s.absolute_expires_at, s.auth_time, u.role, u.username
       ), issued AS (
         INSERT INTO refresh_tokens (session_id, token_hash, expires_at)
         SELECT t.id, $3, LEAST($4::timestamptz, t.absolute_expires_at) FROM touched t
         RETURNING expires_at
       )
       SELECT sp.session_id AS spent_session, t.user_id, t.amr, t.absolute_expires_at, t.auth_time, t.role, t.username, i.expires_at AS next_expires_at
       FROM spent sp LEFT JOIN touched t ON t.id = sp.session_id LEFT JOIN issued i ON true`,
      [tokenHash, now, nextHash, nextExpiresAt],
    );
    if (!row) return { kind: "unusable" };
    if (row.user_id === null || row.next_expires_at === null) return { kind: "ended" };
    return {
      kind: "rotated",
      sessionId: row.spent_session,
      session: { userId: row.user_id, amr: row.amr!, absoluteExpiresAt: row.absolute_expires_at!, authTime: row.auth_time!, role: row.role!, username: row.username },
      nextExpiresAt: row.next_expires_at,
    };
  },

  async findRefreshToken(tx, tokenHash, now) {
    const [known] = await rows<{ session_id: string; used_at: Date | null; user_id: string; live: boolean }>(tx,
      `SELECT rt.session_id, rt.used_at, s.user_id,
              (s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND ${live("u")}) AS live
       FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id WHERE rt.token_hash = $1`,
      [tokenHash, now],
    );
    return known && { sessionId: known.session_id, usedAt: known.used_at, userId: known.user_id, live: known.live };
  },

  async revoke(tx, selector, reason, now) {
    const [where, params] =
      selector.kind === "one" ? ["id = $3 AND user_id = $4", [selector.sessionId, selector.userId]]
      : selector.kind === "user" ? (selector.exceptSessionId === undefined
        ? ["user_id = $3", [selector.userId]]
        : ["user_id = $3 AND id <> $4", [selector.userId, selector.exceptSessionId]])
      // Revokes only when the token was spent before the grace window: the window is checked in
      // the same statement, against the stored spending time (src/domain/sessions/sessions.ts).
      : ["id = $3 AND EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.token_hash = $4 AND rt.used_at <= $5)",
        [selector.sessionId, selector.tokenHash, selector.spentBefore]];
    const returned = await rows<{ id: string }>(tx,
      `UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE revoked_at IS NULL AND ${where} RETURNING id`,
      [now, reason, ...(params as unknown[])],
    );
    return returned.map((r) => r.id);
  },

  async findByRefreshToken(tx, tokenHash) {
    const [row] = await rows<{ id: string; user_id: string }>(tx,
      `SELECT s.id, s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id WHERE rt.token_hash = $1`,
      [tokenHash],
    );
    return row ? { sessionId: row.id, userId: row.user_id } : undefined;
  },

  async reauthenticate(tx, sessionId, userId, amr, nextHash, now, nextExpiresAt) {
    // One statement: the session is renewed only while it and its account are live (a logout or
    // revocation committed meanwhile leaves `renewed` empty and nothing else happens); the tokens
    // it held are spent (presenting one again is reuse) and the next one is stored.
    const [row] = await rows<{ absolute_expires_at: Date; expires_at: Date }>(tx,
      `WITH renewed AS (
         UPDATE sessions s SET auth_time = $4, amr = $3 FROM users u
         WHERE s.id = $1 AND s.user_id = $2 AND u.id = s.user_id AND s.revoked_at IS NULL AND s.absolute_expires_at > $4 AND ${live("u")}
         RETURNING s.id, s.absolute_expires_at
       ), spent AS (
         UPDATE refresh_tokens rt SET used_at = $4 FROM renewed WHERE rt.session_id = renewed.id AND rt.used_at IS NULL
       ), issued AS (
         INSERT INTO refresh_tokens (session_id, token_hash, expires_at)
         SELECT r.id, $5, LEAST($6::timestamptz, r.absolute_expires_at) FROM renewed r
         RETURNING expires_at
       )
       SELECT r.absolute_expires_at, i.expires_at FROM renewed r, issued i`,
      [sessionId, userId, [...amr], now, nextHash, nextExpiresAt],
    );
    return row && { absoluteExpiresAt: row.absolute_expires_at, refreshExpiresAt: row.expires_at };
  },

  listActive(tx, userId, now, limit, after) {
    const query = managerOf(tx)
      .createQueryBuilder(SessionEntity, "s")
      .where("s.user_id = :userId AND s.revoked_at IS NULL AND s.absolute_expires_at > :now", { userId, now })
      .andWhere("EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id AND rt.used_at IS NULL AND rt.expires_at > :now)")
      .orderBy("s.created_at", "DESC")
      .addOrderBy("s.id", "DESC")
      .limit(limit);
    if (after) query.andWhere("(s.created_at, s.id) < (:t, :id)", { t: after.time, id: after.id });
    return guarded(() => query.getMany());
  },
};
