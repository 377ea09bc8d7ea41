import { EntitySchema } from "typeorm";
import { baseColumns, type BaseRow } from "./base.js";

export interface AuditEventRow extends BaseRow {
  userId: string | null;
  type: string;
  ipAddress: string;
  userAgent: string;
  sessionId: string | null;
  details: Record<string, string>;
  /** The service account (or bootstrap caller) whose call recorded the event, if a service called. */
  caller: string | null;
  /** Who acted when it was not the person: `user:<id>` (an administrator), `service:<name>` or `cli`. */
  actor: string | null;
}

export const AuditEventEntity = new EntitySchema<AuditEventRow>({
  name: "AuditEvent",
  tableName: "audit_events",
  columns: {
    ...baseColumns,
    userId: { name: "user_id", type: "uuid", nullable: true },
    type: { type: "text" },
    ipAddress: { name: "ip_address", type: "text", default: "" },
    userAgent: { name: "user_agent", type: "text", default: "" },
    sessionId: { name: "session_id", type: "uuid", nullable: true },
    details: { type: "jsonb", default: {} },
    caller: { type: "text", nullable: true },
    actor: { type: "text", nullable: true },
  },
});
