// Sessions and their refresh-token families. Every refresh rotates the token; a spent token
// presented again revokes the whole family, unless it was spent moments ago (the grace window:
// two tabs refreshing at once). Check-and-act happens in SQL, never in JavaScript.
import type { SessionRow, SessionSelector, Store, Tx } from "../../store/index.js";
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
  /** When the session signed in (its tokens' `auth_time`). */
  readonly authTime: Date;
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
  | "contact_claimed"
  // AdminService: the account was disabled, or an administrator ended its sessions.
  | "account_disabled" | "revoked_by_admin";

export interface Sessions {
  create(tx: Tx, userId: string, amr: readonly string[], client: ClientMeta): Promise<NewSession>;
  /** Spends a refresh token and issues the next one of its family. */
  rotate(refreshToken: string, client: ClientMeta): Promise<Rotated>;
  /** Ends one session of `userId`; false when it is not theirs or already ended. */
  revoke(userId: string, sessionId: string, reason: RevokeReason, tx?: Tx): Promise<boolean>;
  /** Ends every session of `userId` except `keepSessionId`; returns how many. */
  revokeAll(userId: string, reason: RevokeReason, keepSessionId?: string, tx?: Tx): Promise<number>;
  /** The session (and its owner) of a refresh token, spent or not; for RevokeToken. */
  findByRefreshToken(refreshToken: string): Promise<{ sessionId: string; userId: string } | undefined>;
  listActive(userId: string, page: Page): Promise<{ sessions: SessionRow[]; nextPageToken: string }>;
}

/** What sessions need of the store. */
export type SessionsDb = Pick<Store, "transaction" | "direct" | "sessions">;

export function createSessions(db: SessionsDb, audit: AuditLog, clock: Clock, settings: SessionSettings, revocations: Revocations): Sessions {
  const idleMs = settings.refreshTokenIdleTtlSec * 1000;

  async function issueRefreshToken(tx: Tx, sessionId: string, absoluteExpiresAt: Date): Promise<{ token: string; expiresAt: Date }> {
    const token = randomToken(32);
    const expiresAt = new Date(Math.min(clock.now().getTime() + idleMs, absoluteExpiresAt.getTime()));
    await db.sessions.insertRefreshToken(tx, sessionId, sha256(token), expiresAt);
    return { token, expiresAt };
  }

  async function revokeWhere(tx: Tx, selector: SessionSelector, reason: RevokeReason): Promise<number> {
    const now = clock.now();
    const ids = await db.sessions.revoke(tx, selector, reason, now);
    // Other instances learn of it by NOTIFY on commit; this one at once.
    revocations.sessionsRevoked(ids, now);
    return ids.length;
  }

  return {
    async create(tx, userId, amr, client) {
      const now = clock.now();
      const absoluteExpiresAt = new Date(now.getTime() + settings.sessionAbsoluteTtlSec * 1000);
      const sessionId = await db.sessions.insert(tx, {
        userId,
        amr,
        userAgent: client.userAgent.slice(0, 512),
        ipAddress: client.ip,
        now,
        absoluteExpiresAt,
      });
      const refresh = await issueRefreshToken(tx, sessionId, absoluteExpiresAt);
      return { sessionId, authTime: now, refreshToken: refresh.token, refreshExpiresAt: refresh.expiresAt };
    },

    async rotate(refreshToken, client) {
      const hash = sha256(refreshToken);
      // Spend, touch and issue in one statement (store: sessions.rotateRefreshToken): spent only
      // while live, so of N concurrent refreshes with one token exactly one rotates.
      const now = clock.now();
      const next = randomToken(32);
      const rotation = await db.sessions.rotateRefreshToken(db.direct, hash, sha256(next), now, new Date(now.getTime() + idleMs));
      const outcome = rotation.kind === "rotated"
        ? {
            kind: "rotated" as const,
            rotated: {
              sessionId: rotation.sessionId,
              authTime: rotation.session.createdAt,
              userId: rotation.session.userId,
              amr: rotation.session.amr,
              role: rotation.session.role,
              username: rotation.session.username,
              refreshToken: next,
              refreshExpiresAt: rotation.nextExpiresAt,
            },
          }
        : rotation;
      if (outcome.kind === "rotated") return outcome.rotated;
      if (outcome.kind === "unusable") {
        // Not spendable: unknown, expired, or already spent. Spent means reuse (RFC 9700 §4.14.2).
        const now = clock.now();
        const known = await db.sessions.findRefreshToken(db.direct, hash, now);
        if (known?.usedAt) {
          const graceStart = new Date(now.getTime() - settings.refreshReuseGraceMs);
          // Revokes only when the token was spent before the grace window: the window is checked
          // in the same statement, against the stored spending time. A duplicate inside it is
          // most likely another tab that refreshed at the same moment (its sibling won), so it
          // ends nothing; a thief replaying inside the window is not caught either, which is why
          // the window is short (RFC 9700 §4.14.2 trade-off, documented in README.md).
          const revoked = await revokeWhere(
            db.direct,
            { kind: "reused", sessionId: known.sessionId, tokenHash: hash, spentBefore: graceStart },
            "refresh_token_reuse",
          );
          if (revoked > 0) {
            await audit.record({ userId: known.userId, type: "REFRESH_TOKEN_REUSED", client, sessionId: known.sessionId });
          } else if (known.live && known.usedAt > graceStart) {
            throw new AppError("REFRESH_TOKEN_CONCURRENT", `refresh token of session ${known.sessionId} spent ${now.getTime() - known.usedAt.getTime()} ms ago by a concurrent refresh`, {
              retryAfterMs: 200,
            });
          }
          throw new AppError("REFRESH_TOKEN_REUSED", `refresh token reuse on session ${known.sessionId}`);
        }
      }
      throw new AppError("REFRESH_TOKEN_INVALID", `refresh token ${outcome.kind}`);
    },

    async revoke(userId, sessionId, reason, tx = db.direct) {
      return (await revokeWhere(tx, { kind: "one", sessionId, userId }, reason)) > 0;
    },

    async revokeAll(userId, reason, keepSessionId, tx = db.direct) {
      return revokeWhere(tx, { kind: "user", userId, exceptSessionId: keepSessionId }, reason);
    },

    findByRefreshToken(refreshToken) {
      return db.sessions.findByRefreshToken(db.direct, sha256(refreshToken));
    },

    async listActive(userId, page) {
      const cursor = decodePageToken(page.pageToken);
      const rows = await db.sessions.listActive(db.direct, userId, clock.now(), page.pageSize + 1, cursor ? { time: cursor.time, id: cursor.id } : undefined);
      const more = rows.length > page.pageSize;
      const sessions = rows.slice(0, page.pageSize);
      const last = sessions[sessions.length - 1];
      return { sessions, nextPageToken: more && last ? encodePageToken(last.createdAt, last.id) : "" };
    },
  };
}
