// DisableUser on instance A is seen by VerifyToken on instance B (a separate OS process on the
// same PostgreSQL) within a second: the users trigger NOTIFYs every instance. A disabled account is
// also refused a sign-in code, and EnableUser lets it sign in again but not revive its tokens.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { createTestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { spawnServiceProcess } from "../support/process.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { clientsOn, prepared, setupService } from "../support/setup.js";
import { adminClient } from "./support.js";

const database = prepared(createTestDatabase, (db) => db.drop());
const a = setupService(() => ({ database: database() }));
const b = prepared(() => spawnServiceProcess(database().url), async (proc) => void (await proc.stop()));
const { tokens: tokensB } = clientsOn(b, "grpc");
const admin = adminClient(a, "grpc");
const manager = a.prepare(async () => ({ headers: { "x-service-key": (await accountWithKey(a, uniqueAccountName("cross-admin"), ["users.read", "users.manage"])).key } }));

/** Polls B's VerifyToken until `accept` holds; how long that took (fails after 3 s). */
async function untilB(token: string, accept: (active: boolean, reason: InactiveReason) => boolean): Promise<number> {
  const started = performance.now();
  for (;;) {
    const answer = await tokensB.verifyToken({ token }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    const ms = performance.now() - started;
    if (accept(answer.active, answer.reason)) return ms;
    if (ms > 3_000) throw new Error(`instance B still answers active=${answer.active} reason=${answer.reason} after 3 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("DisableUser across instances", () => {
  it("B refuses the account's token within 1 s of A disabling it; enabled, old tokens stay refused", async () => {
    const account = await a.signUp("cross-disable");
    await untilB(account.tokens.accessToken, (active) => active);
    const started = performance.now();
    await admin.disableUser({ userId: account.userId, reason: "cross-instance test" }, manager());
    await untilB(account.tokens.accessToken, (active, reason) => !active && reason === InactiveReason.USER_DISABLED);
    // From the call on A to B's refusal, the RPC included.
    expect(performance.now() - started).toBeLessThan(1_000);

    // A disabled account gets no sign-in code's session either (answered like a wrong code).
    const { otp } = a.clients("grpc");
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN });
    const code = a.outbox.lastCode(account.email);
    await expectError(otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: account.email, purpose: OtpPurpose.LOGIN, code }), { code: Code.Unauthenticated });

    await admin.enableUser({ userId: account.userId }, manager());
    const again = await a.login(account.email, account.password);
    await untilB(again.accessToken, (active) => active);
    expect((await tokensB.verifyToken({ token: account.tokens.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } })).active).toBe(false);
  });
});
