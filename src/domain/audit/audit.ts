// The audit trail: what happened to an account, by whom (client IP, user agent), when.
import type { DataSource, EntityManager } from "typeorm";
import { AuditEventEntity, type AuditEventRow } from "../../db/entities/index.js";
import type { Clock } from "../clock.js";
import { decodePageToken, encodePageToken, type Page } from "../paging.js";

export type AuditEventType =
  | "SIGN_UP"
  | "LOGIN_SUCCEEDED"
  | "LOGIN_FAILED"
  | "LOGOUT"
  | "PASSWORD_CHANGED"
  | "PASSWORD_RESET"
  | "REFRESH_TOKEN_REUSED"
  | "SESSION_REVOKED"
  | "ACCOUNT_DELETED"
  | "CONTACT_VERIFIED"
  | "MFA_ENABLED"
  | "MFA_DISABLED"
  | "MFA_FAILED"
  | "BACKUP_CODE_USED"
  | "BACKUP_CODES_REGENERATED";

export interface ClientMeta {
  readonly ip: string;
  readonly userAgent: string;
}

export interface AuditRecord {
  readonly userId: string | null;
  readonly type: AuditEventType;
  readonly client: ClientMeta;
  readonly sessionId?: string | null;
  readonly details?: Record<string, string>;
}

export interface AuditLog {
  record(event: AuditRecord, manager?: EntityManager): Promise<void>;
  list(userId: string, page: Page): Promise<{ events: AuditEventRow[]; nextPageToken: string }>;
}

/** Event times come from the service clock, like every other time the service stores. */
export function createAuditLog(db: DataSource, clock: Clock): AuditLog {
  return {
    async record(event, manager = db.manager) {
      await manager.insert(AuditEventEntity, {
        userId: event.userId,
        type: event.type,
        ipAddress: event.client.ip,
        userAgent: event.client.userAgent.slice(0, 512),
        sessionId: event.sessionId ?? null,
        details: event.details ?? {},
        createdAt: clock.now(),
      });
    },
    async list(userId, page) {
      const cursor = decodePageToken(page.pageToken);
      const query = db.manager
        .createQueryBuilder(AuditEventEntity, "e")
        .where("e.user_id = :userId", { userId })
        .orderBy("e.created_at", "DESC")
        .addOrderBy("e.id", "DESC")
        .limit(page.pageSize + 1);
      // Compare with the cursor row itself: created_at has microseconds, the token only milliseconds.
      if (cursor) {
        query.andWhere(
          "(e.created_at, e.id) < (SELECT c.created_at, c.id FROM audit_events c WHERE c.id = :id AND c.user_id = :userId)",
          { id: cursor.id },
        );
      }
      const rows = await query.getMany();
      const more = rows.length > page.pageSize;
      const events = rows.slice(0, page.pageSize);
      const last = events[events.length - 1];
      return { events, nextPageToken: more && last ? encodePageToken(last.createdAt, last.id) : "" };
    },
  };
}
