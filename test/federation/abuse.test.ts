// Federation's abuse cases: the start of a sign-in is rate limited per client address, and an
// account a provider created with an address it did not verify is claimed by that address's
// owner with the provider identity removed (account pre-hijacking through a lax provider).
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { FederationService } from "../../gen/identity/v1/federation_service_pb.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { authorize, federatedSignIn, providerAccount, REDIRECT_URI, setupFederation } from "./support.js";

const { t, op } = setupFederation({ env: { FEDERATION_MAX_STARTS_PER_IP_PER_HOUR: "6" } });

describe("federation abuse", () => {
  const federation = t.clients().client(FederationService);
  const { otp } = t.clients();

  it("takes the identity off an account whose unverified address its owner proves by code", async () => {
    const victim = `victim-${process.pid}@mail.example`;
    // A provider that does not verify addresses lets someone create an account with the victim's.
    const squatter = providerAccount(op(), "squatter", { email: victim, email_verified: false });
    const created = await federatedSignIn(federation, op(), squatter.login);
    expect(created.login?.user).toMatchObject({ email: victim, emailVerified: false });
    const userId = created.login!.user!.id;

    // The victim signs in by a code to the address: the account is theirs, the identity goes.
    await otp.sendOtp({ channel: OtpChannel.EMAIL, destination: victim, purpose: OtpPurpose.LOGIN });
    const claimed = await otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: victim, purpose: OtpPurpose.LOGIN, code: t.outbox.lastCode(victim) });
    expect(claimed.user?.id).toBe(userId);
    expect(await t.db.query(`SELECT 1 FROM federated_identities WHERE user_id = $1`, [userId])).toEqual([]);

    // The squatter's provider sign-in no longer reaches it (the address is verified here now, not there).
    const callback = await authorize(federation, op(), squatter.login);
    await expectError(federation.finishFederatedLogin(callback), { code: Code.FailedPrecondition, reason: "FEDERATION_LINK_REQUIRED" });
  });

  it("limits the sign-ins started per client address, storing nothing once refused", async () => {
    let error;
    for (let i = 0; i < 7 && !error; i++) {
      try {
        await federation.startFederatedLogin({ provider: "test", redirectUri: REDIRECT_URI });
      } catch {
        error = await t.expectUnchanged(() =>
          expectError(federation.startFederatedLogin({ provider: "test", redirectUri: REDIRECT_URI }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" }),
        );
      }
    }
    expect(error, "the limit answered").toBeDefined();
    expect(retryDelayMs(error!)).toBeGreaterThan(0);
  });
});
