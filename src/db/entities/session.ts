import { EntitySchema } from "typeorm";
import { baseColumns, type BaseRow } from "./base.js";

/** A signed-in device; also the family of its refresh tokens. */
export interface SessionRow extends BaseRow {
  userId: string;
  amr: string[];
  userAgent: string;
  ipAddress: string;
  lastRefreshAt: Date;
  /** When the session last proved its factors (sign-in or Reauthenticate): its tokens' `auth_time`. */
  authTime: Date;
  absoluteExpiresAt: Date;
  revokedAt: Date | null;
  revokeReason: string | null;
}

export const SessionEntity = new EntitySchema<SessionRow>({
  name: "Session",
  tableName: "sessions",
  columns: {
    ...baseColumns,
    userId: { name: "user_id", type: "uuid" },
    amr: { type: "text", array: true },
    userAgent: { name: "user_agent", type: "text", default: "" },
    ipAddress: { name: "ip_address", type: "text", default: "" },
    lastRefreshAt: { name: "last_refresh_at", type: "timestamptz" },
    authTime: { name: "auth_time", type: "timestamptz" },
    absoluteExpiresAt: { name: "absolute_expires_at", type: "timestamptz" },
    revokedAt: { name: "revoked_at", type: "timestamptz", nullable: true },
    revokeReason: { name: "revoke_reason", type: "text", nullable: true },
  },
});

/** One refresh token of a session's family, stored only as a SHA-256 hash. */
export interface RefreshTokenRow extends BaseRow {
  sessionId: string;
  tokenHash: Buffer;
  expiresAt: Date;
  usedAt: Date | null;
}

export const RefreshTokenEntity = new EntitySchema<RefreshTokenRow>({
  name: "RefreshToken",
  tableName: "refresh_tokens",
  columns: {
    ...baseColumns,
    sessionId: { name: "session_id", type: "uuid" },
    tokenHash: { name: "token_hash", type: "bytea" },
    expiresAt: { name: "expires_at", type: "timestamptz" },
    usedAt: { name: "used_at", type: "timestamptz", nullable: true },
  },
});
