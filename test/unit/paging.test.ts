// Keyset page tokens (no database): sizes are clamped, a token decodes to the cursor it was made
// from, and anything this service could not have produced is INVALID_ARGUMENT on page_token.
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/errors.js";
import { decodePageToken, DEFAULT_PAGE_SIZE, encodePageToken, MAX_PAGE_SIZE, pageOf } from "../../src/domain/paging.js";

const ID = "01234567-89ab-cdef-0123-456789abcdef";
const token = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The field violations of the AppError `action` throws. */
function violationOf(action: () => unknown): { field: string; reason: string } {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    const error = err as AppError;
    expect(error.reason).toBe("INVALID_ARGUMENT");
    expect(error.violations).toHaveLength(1);
    return { field: error.violations[0]!.field, reason: error.violations[0]!.reason };
  }
  throw new Error("expected an INVALID_ARGUMENT");
}

describe("pageOf", () => {
  it("takes the default for 0, keeps sizes up to the maximum and clamps larger ones", () => {
    expect(pageOf(0, "")).toEqual({ pageSize: DEFAULT_PAGE_SIZE, pageToken: "" });
    expect(pageOf(1, "t").pageSize).toBe(1);
    expect(pageOf(MAX_PAGE_SIZE, "").pageSize).toBe(MAX_PAGE_SIZE);
    expect(pageOf(MAX_PAGE_SIZE + 1, "").pageSize).toBe(MAX_PAGE_SIZE);
    expect(pageOf(2 ** 31 - 1, "").pageSize).toBe(MAX_PAGE_SIZE);
  });

  it("refuses a negative size on page_size", () => {
    expect(violationOf(() => pageOf(-1, ""))).toEqual({ field: "page_size", reason: "OUT_OF_RANGE" });
  });
});

describe("page tokens", () => {
  it("decode to the cursor they were made from", () => {
    const time = new Date("2026-12-03T08:00:00.123Z");
    expect(decodePageToken(encodePageToken(time, ID))).toEqual({ time, id: ID });
  });

  it("an empty token is the first page", () => {
    expect(decodePageToken("")).toBeUndefined();
  });

  it("are opaque: URL-safe base64 without padding", () => {
    expect(encodePageToken(new Date(0), ID)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  const foreign: Array<[string, string]> = [
    ["not base64 JSON", "%%%"],
    ["JSON that is not a pair", token({ time: "2026-01-01T00:00:00.000Z", id: ID })],
    ["an id that is not a UUID", token(["2026-01-01T00:00:00.000Z", "x"])],
    ["an upper-case UUID (a second spelling)", token(["2026-01-01T00:00:00.000Z", ID.toUpperCase()])],
    ["a time that is not a date", token(["yesterday", ID])],
    ["a time before 1970", token(["1969-12-31T23:59:59.999Z", ID])],
    ["a year past 9999", token(["+275000-01-01T00:00:00.000Z", ID])],
    ["a time in another spelling", token(["2026-01-01T00:00:00Z", ID])],
    ["a number for the time", token([0, ID])],
    ["standard base64 padding", `${encodePageToken(new Date(0), ID)}=`],
  ];
  it.each(foreign)("refuses %s on page_token", (_, value) => {
    expect(violationOf(() => decodePageToken(value))).toEqual({ field: "page_token", reason: "INVALID_PAGE_TOKEN" });
  });

  it("accepts the edges of the years a row can be stamped with", () => {
    for (const time of [new Date(0), new Date(Date.UTC(10000, 0, 1) - 1)]) {
      expect(decodePageToken(encodePageToken(time, ID))?.time).toEqual(time);
    }
  });
});
