// Keyset paging: a page token is the (time, id) of the last row returned, opaque to clients.
import { createHash } from "node:crypto";
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Rows are stamped with the clock: a cursor outside these years was not made here (and a year such as 275000 made PostgreSQL fail). */
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(10000, 0, 1);

/**
 * The cursor of a token this service produced, or INVALID_ARGUMENT: a strict UUID, a time within
 * the years above, and exactly the encoding encodePageToken gives them (no second spelling).
 */
export function decodePageToken(token: string): { time: Date; id: string } | undefined {
  if (token === "") return undefined;
  try {
    const [time, id] = JSON.parse(Buffer.from(token, "base64url").toString()) as [unknown, unknown];
    if (typeof time !== "string" || typeof id !== "string" || !UUID.test(id)) throw new Error("bad");
    const date = new Date(time);
    const ms = date.getTime();
    if (!(ms >= EARLIEST && ms < LATEST) || encodePageToken(date, id) !== token) throw new Error("bad");
    return { time: date, id };
  } catch {
    throw invalidField("page_token", "INVALID_PAGE_TOKEN", "is not a token from a previous response");
  }
}

/**
 * A page token bound to the request it pages (AIP-158: a token is valid only with the filter it
 * was made for): the (time, id) of the last row and a digest of `binding` (the filter, as a
 * JSON-serialisable value). Opaque to clients.
 */
export function encodeBoundPageToken(time: Date, id: string, binding: unknown): string {
  return `${encodePageToken(time, id)}.${bindingDigest(binding)}`;
}

/** The cursor of a bound token made for `binding`; INVALID_ARGUMENT for any other token or filter. */
export function decodeBoundPageToken(token: string, binding: unknown): { time: Date; id: string } | undefined {
  if (token === "") return undefined;
  const dot = token.lastIndexOf(".");
  if (dot < 0 || token.slice(dot + 1) !== bindingDigest(binding)) {
    throw invalidField("page_token", "INVALID_PAGE_TOKEN", "is not a token from a previous response with the same filter");
  }
  return decodePageToken(token.slice(0, dot));
}

function bindingDigest(binding: unknown): string {
  const json = JSON.stringify(binding, (_key, value: unknown) => (value instanceof Date ? value.toISOString() : value));
  return createHash("sha256").update(json ?? "").digest("base64url").slice(0, 16);
}
