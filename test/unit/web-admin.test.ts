// The browser app's reading of AdminService refusals (no browser, no database): STEP_UP_REQUIRED
// is UNAUTHENTICATED on the wire, yet it asks for the second factor again and does not end the
// page's session, unlike ACCESS_TOKEN_INVALID; a role refusal asks for nothing.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ERROR_REASONS, type ErrorReason } from "../../src/error-reasons.js";
import { ERROR_DOMAIN } from "../../src/services/errors.js";
import { needsStepUp } from "../../src/web/admin.js";
import { endsSession, friendlyMessage } from "../../src/web/errors.js";

function refusal(reason: ErrorReason, code: Code): ConnectError {
  return new ConnectError("ignored", code, undefined, [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: ERROR_DOMAIN }) }]);
}

describe("the Administration section's reading of refusals", () => {
  it("asks for the second factor again on STEP_UP_REQUIRED, keeping the session", () => {
    const error = refusal("STEP_UP_REQUIRED", Code.Unauthenticated);
    expect(needsStepUp(error)).toBe(true);
    expect(endsSession(error)).toBe(false);
    expect(friendlyMessage(error)).toBe(ERROR_REASONS.STEP_UP_REQUIRED.browser);
  });

  it("asks for nothing on a role refusal, and lets an ended session end", () => {
    expect(needsStepUp(refusal("ADMIN_ROLE_REQUIRED", Code.PermissionDenied))).toBe(false);
    const ended = refusal("ACCESS_TOKEN_INVALID", Code.Unauthenticated);
    expect(needsStepUp(ended)).toBe(false);
    expect(endsSession(ended)).toBe(true);
    expect(needsStepUp(new ConnectError("no details", Code.Unauthenticated))).toBe(false);
  });
});
