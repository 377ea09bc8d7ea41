// Columns every table shares: a UUID primary key and a creation time.
import type { EntitySchemaColumnOptions } from "typeorm";

export interface BaseRow {
  id: string;
  createdAt: Date;
}

export const baseColumns: Record<keyof BaseRow, EntitySchemaColumnOptions> = {
  id: { type: "uuid", primary: true, generated: "uuid" },
  createdAt: { name: "created_at", type: "timestamptz", createDate: true },
};
