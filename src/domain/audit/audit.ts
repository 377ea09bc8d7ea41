// The audit trail: what happened to an account, by whom (client IP, user agent), when.
import type { AuditEventRow, Store, Tx } from "../../store/index.js";
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
  | "BACKUP_CODES_REGENERATED"
  | "SERVICE_TOKEN_ISSUED"
  | "PROFILE_UPDATED"
  | "CONTACT_CHANGE_REQUESTED"
  | "CONTACT_CHANGED"
  | "REAUTHENTICATED"
  // Passkeys (issue 17).
  | "PASSKEY_REGISTERED"
  | "PASSKEY_RENAMED"
  | "PASSKEY_REMOVED"
  | "PASSKEY_LOGIN"
  | "PASSKEY_LOGIN_FAILED"
  // Sign-in with OpenID Connect providers (issue 17).
  | "IDENTITY_LINKED"
  | "IDENTITY_UNLINKED"
  | "FEDERATED_LOGIN"
  | "FEDERATED_LOGIN_FAILED"

  // Administrative acts (AdminService and the admin command line), recorded with an `actor`.
  | "ROLE_CHANGED"
  | "ACCOUNT_DISABLED"
  | "ACCOUNT_ENABLED"
  | "ACCOUNT_RESTORED"
  | "SESSIONS_REVOKED_BY_ADMIN"
  | "MFA_RESET";

export interface ClientMeta {
  readonly ip: string;
  readonly userAgent: string;
  /** The service whose call this is (a service account or bootstrap name), if a service called. */
  readonly caller?: string;
}

export interface AuditRecord {
  readonly userId: string | null;
  readonly type: AuditEventType;
  readonly client: ClientMeta;
  readonly sessionId?: string | null;
  readonly details?: Record<string, string>;
  /**
   * Who acted when it was not the person: `user:<id>` (an administrator), `service:<name>` or
   * `cli`. The person's own ListActivity shows such an event as made by an administrator.
   */
  readonly actor?: string;
}

export interface AuditLog {
  /** Records `event`, in `tx` when given (so it commits with what it describes). */
  record(event: AuditRecord, tx?: Tx): Promise<void>;
  list(userId: string, page: Page): Promise<{ events: AuditEventRow[]; nextPageToken: string }>;
}

/** What the audit log needs of the store. */
export type AuditDb = Pick<Store, "direct" | "audit">;

/** Event times come from the service clock, like every other time the service stores. */
export function createAuditLog(db: AuditDb, clock: Clock): AuditLog {
  return {
    async record(event, tx = db.direct) {
      await db.audit.insert(tx, {
        userId: event.userId,
        type: event.type,
        ipAddress: event.client.ip,
        userAgent: event.client.userAgent.slice(0, 512),
        sessionId: event.sessionId ?? null,
        details: event.details ?? {},
        caller: event.client.caller ?? null,
        actor: event.actor ?? null,
        createdAt: clock.now(),
      });
    },
    async list(userId, page) {
      const cursor = decodePageToken(page.pageToken);
      const rows = await db.audit.list(db.direct, userId, page.pageSize + 1, cursor?.id);
      const more = rows.length > page.pageSize;
      const events = rows.slice(0, page.pageSize);
      const last = events[events.length - 1];
      return { events, nextPageToken: more && last ? encodePageToken(last.createdAt, last.id) : "" };
    },
  };
}
