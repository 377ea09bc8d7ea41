// Keyset paging: a page token is the (time, id) of the last row returned, opaque to clients.
import { invalidField } from "./errors.js";

export interface Page {
  readonly pageSize: number;
  readonly pageToken: string;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

export function pageOf(pageSize: number, pageToken: string): Page {
  if (pageSize < 0) {
    throw invalidField("page_size", "OUT_OF_RANGE", "must not be negative");
  }
  return { pageSize: Math.min(pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), pageToken };
}

export function encodePageToken(time: Date, id: string): string {
  return Buffer.from(JSON.stringify([time.toISOString(), id])).toString("base64url");
}

export function decodePageToken(token: string): { time: Date; id: string } | undefined {
  if (token === "") return undefined;
  try {
    const [time, id] = JSON.parse(Buffer.from(token, "base64url").toString()) as [string, string];
    const date = new Date(time);
    if (typeof id !== "string" || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(date.getTime())) throw new Error("bad");
    return { time: date, id };
  } catch {
    throw invalidField("page_token", "INVALID_PAGE_TOKEN", "is not a token from a previous response");
  }
}
