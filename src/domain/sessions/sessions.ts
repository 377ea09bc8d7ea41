// Sessions and their refresh-token families. Every refresh rotates the token; a spent token
// presented again revokes the whole family, unless it was spent moments ago (the grace window:
// two tabs refreshing at once). Check-and-act happens in SQL, never in JavaScript.
import type { DataSource, EntityManager } from "typeorm";
import { RefreshTokenEntity, SessionEntity, type SessionRow } from "../../db/entities/index.js";
import { returnedRows } from "../../db/query.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import type { Revocations } from "../tokens/revocation.js";
import { randomToken, sha256 } from "../crypto.js";
import { AppError } from "../errors.js";
import { decodePageToken, encodePageToken, type Page } from "../paging.js";

export interface SessionSettings {
  readonly refreshTokenIdleTtlSec: number;
  readonly sessionAbsoluteTtlSec: number;
  /**
   * A token spent less than this long ago, on a live session, answers REFRESH_TOKEN_CONCURRENT
   * and revokes nothing; 0 treats every second use as reuse.
   */
  readonly refreshReuseGraceMs: number;
}

export interface NewSession {
  readonly sessionId: string;
  readonly refreshToken: string;
  readonly refreshExpiresAt: Date;
}

export interface Rotated extends NewSession {
  readonly userId: string;
  readonly amr: readonly string[];
  /** The account's claims for the new access token, read in the same statement. */
  readonly role: string;
  readonly username: string | null;
}

export type RevokeReason =
  | "logout" | "revoked" | "password_changed" | "password_reset" | "account_deleted" | "refresh_token_reuse"
  // A sign-in code proved an unverified contact: whoever added it to the account loses access.
  | "contact_claimed";

export interface Sessions {
  create(manager: EntityManager, userId: string, amr: readonly string[], client: ClientMeta): Promise<NewSession>;
  /** Spends a refresh token and issues the next one of its family. */
  rotate(refreshToken: string, client: ClientMeta): Promise<Rotated>;
  /** Ends one session of `userId`; false when it is not theirs or already ended. */
  revoke(userId: string, sessionId: string, reason: RevokeReason, manager?: EntityManager): Promise<boolean>;
  /** Ends every session of `userId` except `keepSessionId`; returns how many. */
  revokeAll(userId: string, reason: RevokeReason, keepSessionId?: string, manager?: EntityManager): Promise<number>;
  /** The session (and its owner) of a refresh token, spent or not; for RevokeToken. */
  findByRefreshToken(refreshToken: string): Promise<{ sessionId: string; userId: string } | undefined>;
  listActive(userId: string, page: Page): Promise<{ sessions: SessionRow[]; nextPageToken: string }>;
}

export function createSessions(db: DataSource, audit: AuditLog, clock: Clock, settings: SessionSettings, revocations: Revocations): Sessions {
  const idleMs = settings.refreshTokenIdleTtlSec * 1000;

  async function issueRefreshToken(manager: EntityManager, sessionId: string, absoluteExpiresAt: Date): Promise<{ token: string; expiresAt: Date }> {
    const token = randomToken(32);
    const expiresAt = new Date(Math.min(clock.now().getTime() + idleMs, absoluteExpiresAt.getTime()));
    await manager.insert(RefreshTokenEntity, { sessionId, tokenHash: sha256(token), expiresAt, usedAt: null });
    return { token, expiresAt };
  }

  async function revokeWhere(manager: EntityManager, where: string, params: unknown[], reason: RevokeReason): Promise<number> {
    const now = clock.now();
    const returned = returnedRows<{ id: string }>(await manager.query(
      `UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE revoked_at IS NULL AND ${where} RETURNING id`,
      [now, reason, ...params],
    ));
    // Other instances learn of it by NOTIFY on commit; this one at once.
    revocations.sessionsRevoked(returned.map((r) => r.id), now);
    return returned.length;
  }

  return {
    async create(manager, userId, amr, client) {
      const now = clock.now();
      const absoluteExpiresAt = new Date(now.getTime() + settings.sessionAbsoluteTtlSec * 1000);
      const session = await manager.save(SessionEntity, manager.create(SessionEntity, {
        userId,
        amr: [...amr],
        userAgent: client.userAgent.slice(0, 512),
        ipAddress: client.ip,
        lastRefreshAt: now,
        absoluteExpiresAt,
        revokedAt: null,
        revokeReason: null,
        createdAt: now,
      }));
      const refresh = await issueRefreshToken(manager, session.id, absoluteExpiresAt);
      return { sessionId: session.id, refreshToken: refresh.token, refreshExpiresAt: refresh.expiresAt };
    },

    async rotate(refreshToken, client) {
      const hash = sha256(refreshToken);
      const outcome = await db.transaction(async (manager) => {
        const now = clock.now();
        // A token of an ended session is refused without being spent, so a second try is not "reuse".
        const [spent] = (await manager.query(
          `UPDATE refresh_tokens rt SET used_at = $2 WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > $2
           AND EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
                       WHERE s.id = rt.session_id AND s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND u.status = 'active')
           RETURNING rt.session_id`,
          [hash, now],
        )) as [Array<{ session_id: string }>, number];
        const sessionId = spent[0]?.session_id;
        if (sessionId === undefined) return { kind: "unusable" as const };
        const [[session]] = (await manager.query(
          `UPDATE sessions s SET last_refresh_at = $2 FROM users u
           WHERE s.id = $1 AND u.id = s.user_id AND s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND u.status = 'active'
           RETURNING s.user_id, s.amr, s.absolute_expires_at, u.role, u.username`,
          [sessionId, now],
        )) as [Array<{ user_id: string; amr: string[]; absolute_expires_at: Date; role: string; username: string | null }>, number];
        if (!session) return { kind: "ended" as const };
        const next = await issueRefreshToken(manager, sessionId, session.absolute_expires_at);
        return {
          kind: "rotated" as const,
          rotated: {
            sessionId,
            userId: session.user_id,
            amr: session.amr,
            role: session.role,
            username: session.username,
            refreshToken: next.token,
            refreshExpiresAt: next.expiresAt,
          },
        };
      });
      if (outcome.kind === "rotated") return outcome.rotated;
      if (outcome.kind === "unusable") {
        // Not spendable: unknown, expired, or already spent. Spent means reuse (RFC 9700 §4.14.2).
        const now = clock.now();
        const [known] = (await db.query(
          `SELECT rt.session_id, rt.used_at, s.user_id,
                  (s.revoked_at IS NULL AND s.absolute_expires_at > $2 AND u.status = 'active') AS live
           FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id WHERE rt.token_hash = $1`,
          [hash, now],
        )) as Array<{ session_id: string; used_at: Date | null; user_id: string; live: boolean }>;
        if (known?.used_at) {
          const graceStart = new Date(now.getTime() - settings.refreshReuseGraceMs);
          // Revokes only when the token was spent before the grace window: the window is checked
          // in the same statement, against the stored spending time. A duplicate inside it is
          // most likely another tab that refreshed at the same moment (its sibling won), so it
          // ends nothing; a thief replaying inside the window is not caught either, which is why
          // the window is short (RFC 9700 §4.14.2 trade-off, documented in README.md).
          const revoked = await revokeWhere(
            db.manager,
            "id = $3 AND EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.token_hash = $4 AND rt.used_at <= $5)",
            [known.session_id, hash, graceStart],
            "refresh_token_reuse",
          );
          if (revoked > 0) {
            await audit.record({ userId: known.user_id, type: "REFRESH_TOKEN_REUSED", client, sessionId: known.session_id });
          } else if (known.live && known.used_at > graceStart) {
            throw new AppError("REFRESH_TOKEN_CONCURRENT", `refresh token of session ${known.session_id} spent ${now.getTime() - known.used_at.getTime()} ms ago by a concurrent refresh`, {
              retryAfterMs: 200,
            });
          }
          throw new AppError("REFRESH_TOKEN_REUSED", `refresh token reuse on session ${known.session_id}`);
        }
      }
      throw new AppError("REFRESH_TOKEN_INVALID", `refresh token ${outcome.kind}`);
    },

    async revoke(userId, sessionId, reason, manager = db.manager) {
      return (await revokeWhere(manager, "id = $3 AND user_id = $4", [sessionId, userId], reason)) > 0;
    },

    async revokeAll(userId, reason, keepSessionId, manager = db.manager) {
      return keepSessionId === undefined
        ? revokeWhere(manager, "user_id = $3", [userId], reason)
        : revokeWhere(manager, "user_id = $3 AND id <> $4", [userId, keepSessionId], reason);
    },

    async findByRefreshToken(refreshToken) {
      const [row] = (await db.query(
        `SELECT s.id, s.user_id FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id WHERE rt.token_hash = $1`,
        [sha256(refreshToken)],
      )) as Array<{ id: string; user_id: string }>;
      return row ? { sessionId: row.id, userId: row.user_id } : undefined;
    },

    async listActive(userId, page) {
      const cursor = decodePageToken(page.pageToken);
      const query = db.manager
        .createQueryBuilder(SessionEntity, "s")
        .where("s.user_id = :userId AND s.revoked_at IS NULL AND s.absolute_expires_at > :now", { userId, now: clock.now() })
        .andWhere("EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.session_id = s.id AND rt.used_at IS NULL AND rt.expires_at > :now)")
        .orderBy("s.created_at", "DESC")
        .addOrderBy("s.id", "DESC")
        .limit(page.pageSize + 1);
      if (cursor) query.andWhere("(s.created_at, s.id) < (:t, :id)", { t: cursor.time, id: cursor.id });
      const rows = await query.getMany();
      const more = rows.length > page.pageSize;
      const sessions = rows.slice(0, page.pageSize);
      const last = sessions[sessions.length - 1];
      return { sessions, nextPageToken: more && last ? encodePageToken(last.createdAt, last.id) : "" };
    },
  };
}
