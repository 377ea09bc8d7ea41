// Failed password logins, limited on the shared mechanism: backoff per account and client,
// at most 100 failures per account an hour however many clients try at once, a cap per client
// address, RESOURCE_EXHAUSTED with RetryInfo, and unknown accounts limited exactly alike.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { ClientMeta } from "../../src/domain/audit/audit.js";
import { AppError } from "../../src/domain/errors.js";
import { auditRows, PASSWORD, signUp, uniqueEmail, type AuthClient } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { limitHits } from "../support/stored-data.js";
import { setupService } from "../support/setup.js";

const WRONG = "not the password at all";
const clock = new ManualClock();
const t = setupService({
  clock,
  env: { ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1", HASH_QUEUE_LIMIT: "1000", LOGIN_MAX_FAILURES_PER_IP_PER_HOUR: "30" },
});
const { auth } = t.clients("grpc");
const { auth: webAuth } = t.clients("grpc-web");

function from(ip: string): ClientMeta {
  return { ip, userAgent: "test" };
}

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => "OK",
    (err: unknown) => (err instanceof AppError ? err.reason : String(err)),
  );
}

/** Runs the backoff sequence against `identifier` and returns what each step answered. */
async function backoffSequence(identifier: string, rightPassword: string) {
  const answers: Array<[Code | "OK", number | undefined]> = [];
  const attempt = async (client: AuthClient, password: string) => {
    try {
      await client.login({ identifier, password });
      answers.push(["OK", undefined]);
    } catch (err) {
      const error = ConnectError.from(err);
      answers.push([error.code, retryDelayMs(error)]);
    }
  };
  for (let i = 0; i < 5; i++) await attempt(auth, WRONG);
  await attempt(webAuth, WRONG); // limited: 1 s
  await attempt(auth, rightPassword); // the right password waits too
  clock.advance(1_000);
  await attempt(auth, WRONG);
  await attempt(webAuth, WRONG); // limited: 2 s
  clock.advance(2_000);
  await attempt(auth, rightPassword);
  return answers;
}

describe("failed logins", () => {
  it("back off one client after 5 failures, with RetryInfo, while the owner elsewhere is not slowed", async () => {
    const account = await signUp(auth, "backoff");
    const answers = await backoffSequence(account.email, PASSWORD);
    expect(answers).toEqual([
      ...Array(5).fill([Code.Unauthenticated, undefined]),
      [Code.ResourceExhausted, 1_000],
      [Code.ResourceExhausted, 1_000],
      [Code.Unauthenticated, undefined],
      [Code.ResourceExhausted, 2_000],
      ["OK", undefined],
    ]);
    // Back to when this client had to wait: from another address the owner signs in at once.
    clock.advance(-3_000);
    const accounts = t.app.services.accounts;
    await expect(reasonOf(accounts.login(account.email, PASSWORD, from("127.0.0.1")))).resolves.toBe("RATE_LIMITED");
    await expect(reasonOf(accounts.login(account.email, PASSWORD, from("192.0.2.10")))).resolves.toBe("OK");
    clock.advance(3_000);
    // Limited attempts were refused before the password was checked: no audit row for them.
    const failed = (await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGIN_FAILED");
    expect(failed).toHaveLength(6);
  });

  it("limit an unknown identifier exactly like an account", async () => {
    const known = await signUp(auth, "alike");
    clock.advance(60 * 60_000);
    const unknownAnswers = await backoffSequence(uniqueEmail("nobody"), PASSWORD);
    clock.advance(60 * 60_000);
    const knownAnswers = await backoffSequence(known.email, "still not it, either");
    expect(unknownAnswers.slice(0, -1)).toEqual(knownAnswers.slice(0, -1));
  });

  it("never exceed 100 failures per account an hour, however many clients try at once", async () => {
    const account = await signUp(auth, "ceiling");
    const accounts = t.app.services.accounts;
    const results = await Promise.all([...Array(120)].map((_, i) => reasonOf(accounts.login(account.email, WRONG, from(`10.1.${i >> 8}.${i & 255}`)))));
    expect(results.filter((r) => r === "INVALID_CREDENTIALS")).toHaveLength(100);
    expect(results.filter((r) => r === "RATE_LIMITED")).toHaveLength(20);
    expect((await auditRows(t.db, account.userId)).filter((e) => e.type === "LOGIN_FAILED")).toHaveLength(100);

    // Now the account is closed to password guesses from anywhere, for the rest of the hour.
    const limited = await expectError(auth.login({ identifier: account.email, password: PASSWORD }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    expect(retryDelayMs(limited)).toBeGreaterThan(3_590_000);
    clock.advance(3_600_000);
    await auth.login({ identifier: account.email, password: PASSWORD });
  });

  it("cap failures per client address across accounts; successes cost nothing", async () => {
    const accounts = t.app.services.accounts;
    const account = await signUp(auth, "ip-cap");
    const attacker = from("203.0.113.66");
    for (let i = 0; i < 3; i++) await expect(reasonOf(accounts.login(account.email, WRONG, attacker))).resolves.toBe("INVALID_CREDENTIALS");
    for (let i = 0; i < 8; i++) await expect(reasonOf(accounts.login(account.email, PASSWORD, attacker))).resolves.toBe("OK");
    expect(await limitHits(t.db, `login-fail:account:user:${account.userId}`)).toBe(3);
    for (let i = 0; i < 27; i++) {
      await expect(reasonOf(accounts.login(uniqueEmail(`stuffing-${i}`), WRONG, attacker))).resolves.toBe("INVALID_CREDENTIALS");
    }
    await expect(reasonOf(accounts.login(uniqueEmail("stuffing-last"), WRONG, attacker))).resolves.toBe("RATE_LIMITED");
    await expect(reasonOf(accounts.login(account.email, PASSWORD, attacker))).resolves.toBe("RATE_LIMITED");
    await expect(reasonOf(accounts.login(account.email, PASSWORD, from("203.0.113.67")))).resolves.toBe("OK");
  });
});
