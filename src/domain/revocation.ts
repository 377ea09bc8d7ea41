// Whether a signature-valid access token has been revoked: its session ended, its account
// deleted or disabled, or its account's tokens invalidated after it was issued.
import type { DataSource } from "typeorm";
import type { AccessClaims, InactiveReason } from "./tokens.js";

export interface Revocations {
  check(claims: AccessClaims): Promise<InactiveReason | undefined>;
}

export function createRevocations(db: DataSource): Revocations {
  return {
    async check(claims) {
      const [row] = (await db.query(
        `SELECT s.revoked_at, u.status, u.tokens_valid_after
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.user_id = $2`,
        [claims.sid, claims.sub],
      )) as Array<{ revoked_at: Date | null; status: string; tokens_valid_after: Date | null }>;
      if (!row) return "SESSION_REVOKED";
      if (row.status !== "active") return "USER_DISABLED";
      if (row.revoked_at !== null) return "SESSION_REVOKED";
      if (row.tokens_valid_after !== null && claims.iat < Math.floor(row.tokens_valid_after.getTime() / 1000)) return "TOKEN_REVOKED";
      return undefined;
    },
  };
}
