// The error reasons of src/error-reasons.ts and their three readers (no database): the wire
// table answers each reason's declared code and client message, the browser app shows its
// declared sentence, and README.md's "Errors" table lists every reason with its code.
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { status as grpcStatus } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AppError } from "../../src/domain/errors.js";
import { ERROR_REASONS, isErrorReason, type ErrorReason } from "../../src/error-reasons.js";
import { ERROR_DOMAIN, toConnectError } from "../../src/services/errors.js";
import { friendlyMessage } from "../../src/web/errors.js";

const reasons = Object.keys(ERROR_REASONS) as ErrorReason[];

describe("the wire table", () => {
  it.each(reasons)("answers %s with its declared canonical code, client message and ErrorInfo", (reason) => {
    const { code, client } = ERROR_REASONS[reason];
    const error = toConnectError(new AppError(reason, "detail for the log only"));
    // grpc-js's status table names the canonical codes independently of connect-es.
    expect(error.code as number).toBe(grpcStatus[code]);
    expect(error.rawMessage).toBe(client);
    expect(error.findDetails(ErrorInfoSchema).map((d) => [d.reason, d.domain])).toEqual([[reason, ERROR_DOMAIN]]);
  });
});

describe("the browser app", () => {
  const declared = reasons.filter((reason) => ERROR_REASONS[reason].browser !== null);

  it.each(declared)("shows the sentence declared for %s", (reason) => {
    const { code, browser } = ERROR_REASONS[reason];
    const error = new ConnectError("ignored", grpcStatus[code] as number as Code, undefined, [
      { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN }) },
    ]);
    expect(friendlyMessage(error)).toBe(browser);
  });

  it("reads only declared reasons off the wire, never an inherited key", () => {
    expect(isErrorReason("OTP_EXPIRED")).toBe(true);
    expect(isErrorReason("constructor")).toBe(false);
    expect(isErrorReason("toString")).toBe(false);
  });
});

describe("README.md", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const start = readme.indexOf("\n## Errors\n");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);

  it("has an Errors section", () => {
    expect(start).toBeGreaterThan(-1);
  });

  it("lists every reason in its Errors table with the declared code, and no other", () => {
    const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| ([A-Z_]+) \|/gm)].map((m) => [m[1], m[2]]);
    const expected = reasons.map((reason) => [reason, ERROR_REASONS[reason].code]);
    expect(rows.sort()).toEqual(expected.sort());
  });
});
