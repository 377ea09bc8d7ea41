// DisableTotp checks the account's password: each check costs a hash and is a password guess,
// so it takes the login failure limits first (a right password gives its slot back).
import { Code } from "@connectrpc/connect";
import { generateSync } from "otplib";
import { it, expect } from "vitest";
import { bearer, PASSWORD, uniqueEmail } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { setupService } from "../support/setup.js";

const clock = new ManualClock(new Date("2026-11-21T12:00:10Z"));
const t = setupService({ clock, env: { LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR: "3", ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } });

const totp = (secret: string) => generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });

it("DisableTotp's wrong passwords count as failed logins; once limited, even the right password is refused before it is checked", async () => {
  const { auth, mfa } = t.clients("connect");
  const email = uniqueEmail("disable-guess");
  const access = (await auth.signUp({ email, password: PASSWORD })).tokens!.accessToken;
  const setup = await mfa.setupTotp({}, bearer(access));
  clock.advance(30_000);
  await mfa.confirmTotp({ code: totp(setup.secret) }, bearer(access));
  clock.advance(30_000);

  // The right password (with a wrong code) takes nothing from the budget.
  await expectError(mfa.disableTotp({ password: PASSWORD, code: totp(setup.secret) === "000000" ? "111111" : "000000" }, bearer(access)), {
    code: Code.Unauthenticated,
    reason: "MFA_CODE_INVALID",
  });
  for (let i = 0; i < 3; i++) {
    await expectError(mfa.disableTotp({ password: `wrong password ${i}`, code: totp(setup.secret) }, bearer(access)), {
      code: Code.PermissionDenied,
      reason: "WRONG_PASSWORD",
    });
  }
  const limited = await expectError(mfa.disableTotp({ password: PASSWORD, code: totp(setup.secret) }, bearer(access)), {
    code: Code.ResourceExhausted,
    reason: "RATE_LIMITED",
  });
  expect(retryDelayMs(limited)).toBeGreaterThan(0);
  expect((await mfa.getMfaStatus({}, bearer(access))).totpEnabled).toBe(true);
  // The same budget as Login's: the account's failures are shared.
  await expectError(auth.login({ identifier: email, password: PASSWORD }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });

  // An hour later the slots are free again (a new sign-in: the old access token has expired).
  clock.advance(3_600_000);
  const login = await auth.login({ identifier: email, password: PASSWORD });
  if (login.result.case !== "mfaChallenge") throw new Error("expected an MFA challenge");
  const signedIn = await mfa.verifyMfa({ challengeToken: login.result.value.challengeToken, code: { case: "totpCode", value: totp(setup.secret) } });
  const fresh = signedIn.tokens!.accessToken;
  clock.advance(30_000);
  await mfa.disableTotp({ password: PASSWORD, code: totp(setup.secret) }, bearer(fresh));
  expect((await mfa.getMfaStatus({}, bearer(fresh))).totpEnabled).toBe(false);
});
