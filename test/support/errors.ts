// Assertions on wire errors: canonical code, ErrorInfo reason, BadRequest fields.
import { ConnectError, type Code } from "@connectrpc/connect";
import { expect } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

export interface ExpectedError {
  readonly code: Code;
  readonly reason?: string;
  readonly fields?: readonly string[];
}

export async function expectError(promise: Promise<unknown>, expected: ExpectedError): Promise<ConnectError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected the call to fail").toBeInstanceOf(ConnectError);
  const error = caught as ConnectError;
  expect(error.code, `code of "${error.message}"`).toBe(expected.code);
  if (expected.reason) {
    expect(error.findDetails(ErrorInfoSchema).map((d) => d.reason)).toEqual([expected.reason]);
  }
  if (expected.fields) {
    const fields = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
    expect([...fields].sort()).toEqual([...expected.fields].sort());
  }
  return error;
}

export function retryDelayMs(error: ConnectError): number | undefined {
  const info = error.findDetails(RetryInfoSchema)[0];
  return info?.retryDelay ? Number(info.retryDelay.seconds) * 1000 + info.retryDelay.nanos / 1e6 : undefined;
}
