// The audit trail: append-only events per account.
import { AuditEventEntity, type AuditEventRow } from "../db/entities/audit-event.js";
import { guarded, managerOf, type Tx } from "./tx.js";

export type { AuditEventRow };

/** `caller` and `actor` may be left out: most events are recorded by the person, without a service calling. */
export type NewAuditEvent = Omit<AuditEventRow, "id" | "caller" | "actor"> & { readonly caller?: string | null; readonly actor?: string | null };

export interface AuditEventStore {
  insert(tx: Tx, event: NewAuditEvent): Promise<void>;
  /** Events of `userId`, newest first, at most `limit`, after the event `afterId` when given. */
  list(tx: Tx, userId: string, limit: number, afterId?: string): Promise<AuditEventRow[]>;
}

export const auditEventStore: AuditEventStore = {
  async insert(tx, event) {
    await guarded(() => managerOf(tx).insert(AuditEventEntity, event));
  },
  list(tx, userId, limit, afterId) {
    const query = managerOf(tx)
      .createQueryBuilder(AuditEventEntity, "e")
      .where("e.user_id = :userId", { userId })
      .orderBy("e.created_at", "DESC")
      .addOrderBy("e.id", "DESC")
      .limit(limit);
    // Compare with the cursor row itself: created_at has microseconds, the token only milliseconds.
    if (afterId !== undefined) {
      query.andWhere(
        "(e.created_at, e.id) < (SELECT c.created_at, c.id FROM audit_events c WHERE c.id = :id AND c.user_id = :userId)",
        { id: afterId },
      );
    }
    return guarded(() => query.getMany());
  },
};
