// VerifyToken's optional requirements (issue 13, item 2): the amr, authentication age and role a
// backend asks of a token, answered as STEP_UP_REQUIRED (the person can sign in again, or with a
// second factor) distinctly from ROLE_NOT_ALLOWED; and `auth_time`, which a refresh keeps.
import { Code } from "@connectrpc/connect";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DurationSchema } from "@bufbuild/protobuf/wkt";
import { expectError } from "../support/errors.js";
import { ManualClock, TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";

const WITH_KEY = { headers: { "x-service-key": TEST_SERVICE_KEY } };
const clock = new ManualClock();
const t = setupService({ clock });
const { tokens } = t.clients("grpc");

type Request = { requireAmr?: string[]; requireRole?: string[]; maxAuthAge?: MessageInitShape<typeof DurationSchema> };
const verify = (token: string, request: Request = {}) => tokens.verifyToken({ token, ...request }, WITH_KEY);
const reasonOf = async (token: string, request: Request) => InactiveReason[(await verify(token, request)).reason];

describe("VerifyToken requirements", () => {
  it("passes a password session for pwd and its own role, and asks a step up for mfa", async () => {
    const { tokens: pair } = await t.signUp("require-amr");
    expect((await verify(pair.accessToken, { requireAmr: ["pwd"], requireRole: ["user", "admin"] })).active).toBe(true);
    expect(await reasonOf(pair.accessToken, { requireAmr: ["mfa"] })).toBe("STEP_UP_REQUIRED");
    expect(await reasonOf(pair.accessToken, { requireAmr: ["pwd", "mfa"] })).toBe("STEP_UP_REQUIRED");
    expect(await reasonOf(pair.accessToken, { requireRole: ["admin"] })).toBe("ROLE_NOT_ALLOWED");
    // Without requirements the same token is active: the refusals are the requirements'.
    expect((await verify(pair.accessToken)).active).toBe(true);
  });

  it("measures the authentication age from sign-in, which a refresh does not renew", async () => {
    const account = await t.signUp("require-age");
    const signedIn = clock.now().getTime();
    const first = await verify(account.tokens.accessToken);
    expect(timestampMs(first.authTime!)).toBe(Math.floor(signedIn / 1000) * 1000);
    expect(decodeJwt(account.tokens.accessToken).auth_time).toBe(Math.floor(signedIn / 1000));

    clock.advance(120_000);
    const refreshed = await t.clients("grpc").tokens.refreshToken({ refreshToken: account.tokens.refreshToken });
    const token = refreshed.tokens!.accessToken;
    expect(decodeJwt(token).auth_time).toBe(Math.floor(signedIn / 1000));
    expect((await verify(token, { maxAuthAge: durationFromMs(600_000) })).active).toBe(true);
    expect(await reasonOf(token, { maxAuthAge: durationFromMs(60_000) })).toBe("STEP_UP_REQUIRED");
  });

  it("never lets a service token meet a person's requirement", async () => {
    const token = t.app.services.accessTokens.issueService({ service: "billing", audience: t.config.audience, scope: ["tokens.verify"] }).token;
    expect((await verify(token)).active).toBe(true);
    expect(await reasonOf(token, { requireAmr: ["pwd"] })).toBe("STEP_UP_REQUIRED");
    expect(await reasonOf(token, { maxAuthAge: durationFromMs(60_000) })).toBe("STEP_UP_REQUIRED");
    expect(await reasonOf(token, { requireRole: ["user"] })).toBe("ROLE_NOT_ALLOWED");
  });

  it("refuses malformed requirements with INVALID_ARGUMENT naming the field", async () => {
    const { tokens: pair } = await t.signUp("require-bad");
    await expectError(verify(pair.accessToken, { requireAmr: Array.from({ length: 17 }, (_, i) => `m${i}`) }), { code: Code.InvalidArgument, fields: ["require_amr"] });
    await expectError(verify(pair.accessToken, { requireRole: [""] }), { code: Code.InvalidArgument, fields: ["require_role"] });
    await expectError(verify(pair.accessToken, { maxAuthAge: { seconds: -1n, nanos: 0 } }), { code: Code.InvalidArgument, fields: ["max_auth_age"] });
  });
});
