import { EntitySchema } from "typeorm";
import { baseColumns, type BaseRow } from "./base.js";

export type UserStatus = "active" | "disabled" | "deleted";

export interface UserRow extends BaseRow {
  email: string | null;
  emailVerifiedAt: Date | null;
  username: string | null;
  phone: string | null;
  phoneVerifiedAt: Date | null;
  displayName: string;
  role: string;
  passwordHash: string | null;
  status: UserStatus;
  /** Access tokens issued before this instant no longer verify (password change or reset). */
  tokensValidAfter: Date | null;
  mfaEnabledAt: Date | null;
  updatedAt: Date;
  deletedAt: Date | null;
  /** When an administrator disabled the account; null unless disabled. */
  disabledAt: Date | null;
}

export const UserEntity = new EntitySchema<UserRow>({
  name: "User",
  tableName: "users",
  columns: {
    ...baseColumns,
    email: { type: "text", nullable: true },
    emailVerifiedAt: { name: "email_verified_at", type: "timestamptz", nullable: true },
    username: { type: "text", nullable: true },
    phone: { type: "text", nullable: true },
    phoneVerifiedAt: { name: "phone_verified_at", type: "timestamptz", nullable: true },
    displayName: { name: "display_name", type: "text", default: "" },
    role: { type: "text", default: "user" },
    passwordHash: { name: "password_hash", type: "text", nullable: true },
    status: { type: "text", default: "active" },
    tokensValidAfter: { name: "tokens_valid_after", type: "timestamptz", nullable: true },
    mfaEnabledAt: { name: "mfa_enabled_at", type: "timestamptz", nullable: true },
    updatedAt: { name: "updated_at", type: "timestamptz", updateDate: true },
    deletedAt: { name: "deleted_at", type: "timestamptz", nullable: true },
    disabledAt: { name: "disabled_at", type: "timestamptz", nullable: true },
  },
});
