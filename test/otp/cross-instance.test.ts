// Two instances on one database: this process's service and a real second OS process (the
// built service, as `npm start` runs it). Codes and every limit are shared through PostgreSQL.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { signUp, uniqueEmail, uniquePhone } from "../support/accounts.js";
import { createTestDatabase } from "../support/database.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { spawnServiceProcess } from "../support/process.js";
import { lastLoggedCode } from "../support/outbox.js";
import { clientsOn, prepared, setupService } from "../support/setup.js";

const ENV = {
  OTP_MAX_SENDS_PER_IP_PER_HOUR: "5",
  LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR: "4",
  ARGON2_MEMORY_KIB: "1024",
  ARGON2_ITERATIONS: "1",
};
const LOGIN = OtpPurpose.LOGIN;

// Instance A in this process, instance B a separate process, on one database.
const database = prepared(createTestDatabase, (db) => db.drop());
const a = setupService(() => ({ database: database(), env: ENV }));
const b = prepared(() => spawnServiceProcess(database().url, ENV), async (proc) => void (await proc.stop()));
const { otp: otpA, auth: authA } = a.clients("grpc");
const { otp: otpB, auth: authB } = clientsOn(b, "grpc-web");

describe("two instances", () => {
  it("share the resend cooldown", async () => {
    const phone = uniquePhone();
    await otpA.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: LOGIN });
    const refused = await expectError(otpB.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: LOGIN }), {
      code: Code.ResourceExhausted,
      reason: "RATE_LIMITED",
    });
    expect(retryDelayMs(refused)).toBeGreaterThan(20_000);
    expect(retryDelayMs(refused)).toBeLessThanOrEqual(30_000);
  });

  it("share codes: one sent by the other process signs in here, once", async () => {
    const email = uniqueEmail("cross");
    await otpB.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: LOGIN });
    const code = lastLoggedCode(b().logLines, email);
    const signedIn = await otpA.verifyOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: LOGIN, code });
    expect(signedIn.newUser).toBe(true);
    await expectError(otpB.verifyOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: LOGIN, code }), { code: Code.Unauthenticated, reason: "OTP_INVALID" });
  });

  it("let exactly one of concurrent checks of the right code succeed, across instances", async () => {
    const email = uniqueEmail("cross-race");
    await otpA.sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: LOGIN });
    const request = { channel: OtpChannel.EMAIL, destination: email, purpose: LOGIN, code: a.outbox.lastCode(email) };
    const results = await Promise.allSettled([...Array(4)].flatMap(() => [otpA.verifyOtp(request), otpB.verifyOtp(request)]));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.Unauthenticated);
  });

  it("share the per-IP send cap", async () => {
    // Three codes were sent above; the cap is 5 an hour for this client address.
    await otpB.sendOtp({ channel: OtpChannel.EMAIL, destination: uniqueEmail("cap"), purpose: LOGIN });
    await otpA.sendOtp({ channel: OtpChannel.EMAIL, destination: uniqueEmail("cap"), purpose: LOGIN });
    for (const client of [otpA, otpB]) {
      await expectError(client.sendOtp({ channel: OtpChannel.EMAIL, destination: uniqueEmail("cap"), purpose: LOGIN }), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
    }
  });

  it("share the failed-login ceiling of an account", async () => {
    const account = await signUp(authA, "cross-login");
    for (const client of [authA, authB, authA, authB]) {
      await expectError(client.login({ identifier: account.email, password: "wrong password here" }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    }
    for (const client of [authA, authB]) {
      const limited = await expectError(client.login({ identifier: account.email, password: account.password }), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
      expect(retryDelayMs(limited)).toBeGreaterThan(3_500_000);
    }
  });
});
