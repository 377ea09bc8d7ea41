// Passkey sign-in is limited per client address like Login: failed finishes take a slot of
// LOGIN_MAX_FAILURES_PER_IP_PER_HOUR, a successful one gives its slot back, and a limited finish
// is refused (RESOURCE_EXHAUSTED with RetryInfo) before its challenge is looked at.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { PasskeyService } from "../../gen/identity/v1/passkey_service_pb.js";
import { bearer, signUp } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { setupService } from "../support/setup.js";
import { SoftAuthenticator } from "../support/webauthn.js";

const ORIGIN = "https://id.example.test";
const t = setupService({ env: { WEBAUTHN_RP_ID: "id.example.test", WEBAUTHN_ORIGINS: ORIGIN, LOGIN_MAX_FAILURES_PER_IP_PER_HOUR: "3" } });

describe("passkey sign-in limits", () => {
  const { auth, client } = t.clients("connect");
  const passkeys = client(PasskeyService);

  it("counts failed finishes per client address, not successful ones", async () => {
    const account = await signUp(auth, "pk-limits");
    const access = bearer(account.tokens.accessToken);
    const authenticator = new SoftAuthenticator(ORIGIN);
    const registration = await passkeys.startPasskeyRegistration({}, access);
    await passkeys.finishPasskeyRegistration({ challengeId: registration.challengeId, responseJson: JSON.stringify(authenticator.create(registration.optionsJson)), name: "" }, access);

    const signIn = async (overrides = {}) => {
      const start = await passkeys.startPasskeyLogin({});
      return passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: JSON.stringify(authenticator.get(start.optionsJson, overrides)) });
    };
    // Successes give their slots back: more of them than the limit pass.
    for (let i = 0; i < 4; i++) expect((await signIn()).user?.id).toBe(account.userId);
    // Three failures use the budget up...
    for (let i = 0; i < 3; i++) await expectError(signIn({ origin: "https://evil.example" }), { code: Code.Unauthenticated, reason: "WEBAUTHN_VERIFICATION_FAILED" });
    // ...and then even a right answer is refused, with nothing else stored.
    const start = await passkeys.startPasskeyLogin({});
    const response = JSON.stringify(authenticator.get(start.optionsJson));
    const limited = await t.expectUnchanged(() => expectError(passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" }));
    expect(retryDelayMs(limited)).toBeGreaterThan(0);
  });
});
