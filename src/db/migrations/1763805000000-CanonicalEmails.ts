import type { MigrationInterface, QueryRunner } from "typeorm";
import { normalizeEmail } from "../../domain/accounts/identifiers.js";

/**
 * Accounts are now matched by equality on the canonical address (src/domain/identifiers.ts)
 * instead of by lower(), so stored addresses are rewritten to it: an ASCII local part lower-cased,
 * the domain as its lower-case A-label. Only rows that can change are read (an upper-case ASCII
 * letter or anything not printable ASCII). A row is left as it was when its address is not valid
 * any more (say, it holds a zero-width character: no input can reach it by email now, which is
 * the point) or when its canonical form is already another live account's (both spellings used
 * to be separate accounts; neither is merged into the other).
 */
export class CanonicalEmails1763805000000 implements MigrationInterface {
  name = "CanonicalEmails1763805000000";

  async up(q: QueryRunner): Promise<void> {
    const rows = (await q.query(`SELECT id, email FROM users WHERE email ~ '[A-Z]' OR email !~ '^[ -~]*$'`)) as Array<{ id: string; email: string }>;
    for (const { id, email } of rows) {
      const canonical = normalizeEmail(email);
      if (canonical === undefined || canonical === email) continue;
      await q.query(
        `UPDATE users SET email = $2 WHERE id = $1 AND email = $3
           AND NOT EXISTS (SELECT 1 FROM users o WHERE o.id <> $1 AND o.deleted_at IS NULL AND lower(o.email) = lower($2))`,
        [id, canonical, email],
      );
    }
  }

  async down(): Promise<void> {
    // The spellings the addresses had before are gone; the canonical ones still work with the old code.
  }
}
