// Issue 17: PasskeyService over every transport, with a software authenticator
// (test/support/webauthn.ts): registering needs a recent sign-in, a passkey alone signs in as two
// factors (no TOTP prompt), list / rename / remove, and every refusal (a challenge replayed,
// expired or of another session, a wrong origin or RP ID, an unknown or removed credential, a
// counter that went back, a deleted account) answers its reason and stores nothing but its audit
// row and rate-limit slot.
import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { PasskeyService } from "../../gen/identity/v1/passkey_service_pb.js";
import { ManualClock } from "../../src/domain/clock.js";
import { auditRows, bearer, PASSWORD, signUp } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { transportNames } from "../support/transports.js";
import { SoftAuthenticator } from "../support/webauthn.js";

const ORIGIN = "https://id.example.test";
const RP_ID = "example.test";
const clock = new ManualClock(new Date("2026-07-01T09:00:10Z"));
const t = setupService({ clock, env: { WEBAUTHN_RP_ID: RP_ID, WEBAUTHN_ORIGINS: `${ORIGIN},https://app.example.test`, WEBAUTHN_RP_NAME: "Example" } });
/** What a refused finish may change: its audit row and its rate-limit slot. */
const AUDIT_AND_LIMITS = ["audit_events", "rate_limits"];
/** A refusal after the challenge was taken: the challenge is spent too (single use, even on failure). */
const SPENT = [...AUDIT_AND_LIMITS, "webauthn_challenges"];
const REAUTH_MAX_AGE_MS = 300_000;

async function passkeyRow(credentialId: string) {
  const [row] = (await t.db.query(`SELECT sign_count, backed_up, device_type, transports, name, last_used_at FROM passkeys WHERE credential_id = $1`, [credentialId])) as Array<{
    sign_count: string; backed_up: boolean; device_type: string; transports: string[]; name: string; last_used_at: Date | null;
  }>;
  return row;
}

/** The account's audit rows of `type` (the manual clock stands still, so rows of one moment have no order). */
async function audited(userId: string, type: string) {
  return (await auditRows(t.db, userId)).filter((e) => e.type === type);
}

describe.each(transportNames)("passkeys over %s", (name) => {
  const { auth, mfa, tokens, client } = t.clients(name);
  const passkeys = client(PasskeyService);

  /** A new account with one passkey on `authenticator`; its sign-up tokens and the passkey. */
  async function withPasskey(tag: string, authenticator = new SoftAuthenticator(ORIGIN)) {
    const account = await signUp(auth, tag);
    const access = bearer(account.tokens.accessToken);
    const start = await passkeys.startPasskeyRegistration({}, access);
    const { passkey } = await passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: JSON.stringify(authenticator.create(start.optionsJson)), name: "Laptop" }, access);
    return { account, access, authenticator, passkey: passkey! };
  }

  async function signInWith(authenticator: SoftAuthenticator, overrides: Parameters<SoftAuthenticator["get"]>[1] = {}) {
    const start = await passkeys.startPasskeyLogin({});
    return passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: JSON.stringify(authenticator.get(start.optionsJson, overrides)) });
  }

  it("registers a discoverable passkey after a recent sign-in only", async () => {
    const account = await signUp(auth, "pk-register");
    clock.advance(REAUTH_MAX_AGE_MS + 1_000);
    const old = bearer(account.tokens.accessToken);
    // The sign-up's token is still valid, but its sign-in is too old to add a way in.
    await t.expectNothingStored(() => expectError(passkeys.startPasskeyRegistration({}, old), { code: Code.PermissionDenied, reason: "REAUTHENTICATION_REQUIRED" }));
    const renewed = (await auth.reauthenticate({ password: PASSWORD }, old)).tokens!;
    const access = bearer(renewed.accessToken);

    const start = await passkeys.startPasskeyRegistration({}, access);
    const options = JSON.parse(start.optionsJson) as Record<string, any>;
    expect(options.rp).toEqual({ id: RP_ID, name: "Example" });
    expect(options.user.name).toBe(account.email);
    expect(Buffer.from(options.user.id, "base64url").toString("hex")).toBe(account.userId.replace(/-/g, ""));
    expect(options.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "required" });
    expect(options.attestation).toBe("none");
    expect(options.excludeCredentials).toEqual([]);

    const authenticator = new SoftAuthenticator(ORIGIN);
    const response = authenticator.create(start.optionsJson);
    const { passkey } = await passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: JSON.stringify(response), name: "  Work laptop " }, access);
    expect(passkey).toMatchObject({ name: "Work laptop", credentialId: response.id, transports: ["internal"], deviceType: "singleDevice", backedUp: false });
    expect(passkey?.lastUseTime).toBeUndefined();
    expect(await passkeyRow(response.id)).toMatchObject({ sign_count: "0", backed_up: false, device_type: "singleDevice" });
    expect(await audited(account.userId, "PASSKEY_REGISTERED")).toEqual([{ type: "PASSKEY_REGISTERED", session_id: renewed.sessionId, details: { passkey_id: passkey!.id, name: "Work laptop" } }]);

    // The next registration excludes it, so the authenticator makes no second one for the account.
    const again = JSON.parse((await passkeys.startPasskeyRegistration({}, access)).optionsJson) as Record<string, any>;
    expect(again.excludeCredentials).toEqual([{ id: response.id, type: "public-key", transports: ["internal"] }]);
  });

  it("signs in with the passkey alone: amr hwk, user, mfa and no TOTP prompt", async () => {
    const { account, access, authenticator, passkey } = await withPasskey("pk-login");
    // TOTP on: a password sign-in now asks for a code, a passkey sign-in does not.
    const setup = await mfa.setupTotp({}, access);
    clock.advance(30_000);
    await mfa.confirmTotp({ code: generateSync({ secret: setup.secret, epoch: Math.floor(clock.now().getTime() / 1000) }) }, access);
    expect((await auth.login({ identifier: account.email, password: PASSWORD })).result.case).toBe("mfaChallenge");

    const start = await passkeys.startPasskeyLogin({});
    const options = JSON.parse(start.optionsJson) as Record<string, any>;
    expect(options).toMatchObject({ rpId: RP_ID, userVerification: "required" });
    expect(options.allowCredentials ?? []).toEqual([]);
    const signedIn = await passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: JSON.stringify(authenticator.get(start.optionsJson)) });
    expect(signedIn.user?.id).toBe(account.userId);
    expect(signedIn.tokens?.refreshToken).toMatch(/^[\w-]{43}$/);
    expect(decodeJwt(signedIn.tokens!.accessToken).amr).toEqual(["hwk", "user", "mfa"]);
    // Counts as multi-factor wherever `mfa` is asked for.
    const verified = await t.verify(signedIn.tokens!.accessToken);
    expect(verified).toMatchObject({ active: true, userId: account.userId, amr: ["hwk", "user", "mfa"] });
    const asBackend = { headers: { "x-service-key": TEST_SERVICE_KEY } };
    const grpcTokens = t.clients("grpc").tokens;
    expect((await grpcTokens.verifyToken({ token: signedIn.tokens!.accessToken, requireAmr: ["mfa"] }, asBackend)).active).toBe(true);
    expect((await grpcTokens.verifyToken({ token: signedIn.tokens!.accessToken, requireAmr: ["hwk"] }, asBackend)).active).toBe(true);
    expect((await auth.whoAmI({}, bearer(signedIn.tokens!.accessToken))).amr).toEqual(["hwk", "user", "mfa"]);
    // The refresh token works, and keeps the amr.
    const refreshed = (await tokens.refreshToken({ refreshToken: signedIn.tokens!.refreshToken })).tokens!;
    expect(decodeJwt(refreshed.accessToken).amr).toEqual(["hwk", "user", "mfa"]);

    const row = await passkeyRow(passkey.credentialId);
    expect(row).toMatchObject({ sign_count: "1" });
    expect(row!.last_used_at).toEqual(clock.now());
    expect(await audited(account.userId, "PASSKEY_LOGIN")).toEqual([{ type: "PASSKEY_LOGIN", session_id: signedIn.tokens!.sessionId, details: { passkey_id: passkey.id } }]);
  });

  it("lists, renames and removes passkeys; a removed passkey signs in no more (PASSKEY_UNKNOWN)", async () => {
    const { account, access, authenticator, passkey } = await withPasskey("pk-manage");
    const second = new SoftAuthenticator(ORIGIN, { synced: true });
    const start = await passkeys.startPasskeyRegistration({}, access);
    const { passkey: synced } = await passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: JSON.stringify(second.create(start.optionsJson)), name: "" }, access);
    expect(synced).toMatchObject({ name: "Passkey", deviceType: "multiDevice", backedUp: true });

    const listed = (await passkeys.listPasskeys({}, access)).passkeys;
    expect(listed.map((p) => p.id).sort()).toEqual([passkey.id, synced!.id].sort());

    const { passkey: renamed } = await passkeys.renamePasskey({ passkeyId: passkey.id, name: "Phone" }, access);
    expect(renamed?.name).toBe("Phone");
    await t.expectNothingStored(async () => {
      await expectError(passkeys.renamePasskey({ passkeyId: passkey.id, name: " " }, access), { code: Code.InvalidArgument, fields: ["name"] });
      await expectError(passkeys.renamePasskey({ passkeyId: passkey.id, name: "x".repeat(65) }, access), { code: Code.InvalidArgument, fields: ["name"] });
      await expectError(passkeys.renamePasskey({ passkeyId: "not-an-id", name: "Phone" }, access), { code: Code.InvalidArgument, fields: ["passkey_id"] });
      await expectError(passkeys.renamePasskey({ passkeyId: "00000000-0000-4000-8000-000000000000", name: "Phone" }, access), { code: Code.NotFound, reason: "PASSKEY_NOT_FOUND" });
      // Someone else's passkey is not found for the caller either.
      const other = await signUp(auth, "pk-other");
      await expectError(passkeys.removePasskey({ passkeyId: passkey.id }, bearer(other.tokens.accessToken)), { code: Code.NotFound, reason: "PASSKEY_NOT_FOUND" });
    }, { except: ["users", "sessions", "refresh_tokens", "audit_events", "rate_limits"] });

    // Removing needs a recent sign-in too.
    clock.advance(REAUTH_MAX_AGE_MS + 1_000);
    await t.expectNothingStored(() => expectError(passkeys.removePasskey({ passkeyId: passkey.id }, access), { code: Code.PermissionDenied, reason: "REAUTHENTICATION_REQUIRED" }));
    const fresh = bearer((await auth.reauthenticate({ password: PASSWORD }, access)).tokens!.accessToken);
    await passkeys.removePasskey({ passkeyId: passkey.id }, fresh);
    expect((await passkeys.listPasskeys({}, fresh)).passkeys.map((p) => p.id)).toEqual([synced!.id]);
    expect(await audited(account.userId, "PASSKEY_REGISTERED")).toHaveLength(2);
    expect((await audited(account.userId, "PASSKEY_RENAMED")).map((e) => e.details)).toEqual([{ passkey_id: passkey.id, name: "Phone" }]);
    expect((await audited(account.userId, "PASSKEY_REMOVED")).map((e) => e.details)).toEqual([{ passkey_id: passkey.id }]);

    const loginStart = await passkeys.startPasskeyLogin({});
    const response = JSON.stringify(authenticator.get(loginStart.optionsJson));
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyLogin({ challengeId: loginStart.challengeId, responseJson: response }), { code: Code.Unauthenticated, reason: "PASSKEY_UNKNOWN" }),
      SPENT,
    );
    // The synced one (no counter: always 0) still signs in, twice.
    expect((await signInWith(second)).user?.id).toBe(account.userId);
    expect((await signInWith(second)).user?.id).toBe(account.userId);
    expect(await passkeyRow(synced!.credentialId)).toMatchObject({ sign_count: "0" });
  });

  it("a challenge is used once, expires, and (registration) belongs to the session that started it", async () => {
    const { account, access, authenticator } = await withPasskey("pk-challenge");
    // Sign-in: replayed.
    const start = await passkeys.startPasskeyLogin({});
    const response = JSON.stringify(authenticator.get(start.optionsJson));
    await passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response });
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response }), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      AUDIT_AND_LIMITS,
    );
    // Sign-in: expired.
    const late = await passkeys.startPasskeyLogin({});
    clock.advance(301_000);
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyLogin({ challengeId: late.challengeId, responseJson: JSON.stringify(authenticator.get(late.optionsJson)) }), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      AUDIT_AND_LIMITS,
    );
    // A registration challenge is no sign-in challenge.
    const fresh = (await auth.reauthenticate({ password: PASSWORD }, access)).tokens!;
    const registration = await passkeys.startPasskeyRegistration({}, bearer(fresh.accessToken));
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyLogin({ challengeId: registration.challengeId, responseJson: JSON.stringify(authenticator.get(JSON.stringify({ challenge: JSON.parse(registration.optionsJson).challenge, rpId: RP_ID }))) }), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      AUDIT_AND_LIMITS,
    );
    // Registration: finished by another session of the same account.
    const other = (await auth.login({ identifier: account.email, password: PASSWORD })).result.value as { accessToken: string };
    const created = JSON.stringify(new SoftAuthenticator(ORIGIN).create(registration.optionsJson));
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyRegistration({ challengeId: registration.challengeId, responseJson: created, name: "" }, bearer(other.accessToken)), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      AUDIT_AND_LIMITS,
    );
    // ... by its own session it works once; the replay is refused.
    await passkeys.finishPasskeyRegistration({ challengeId: registration.challengeId, responseJson: created, name: "" }, bearer(fresh.accessToken));
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyRegistration({ challengeId: registration.challengeId, responseJson: created, name: "" }, bearer(fresh.accessToken)), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      AUDIT_AND_LIMITS,
    );
    // Registration: expired.
    const lateRegistration = await passkeys.startPasskeyRegistration({}, bearer(fresh.accessToken));
    clock.advance(301_000);
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyRegistration({ challengeId: lateRegistration.challengeId, responseJson: JSON.stringify(new SoftAuthenticator(ORIGIN).create(lateRegistration.optionsJson)), name: "" }, bearer(fresh.accessToken)), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      AUDIT_AND_LIMITS,
    );
  });

  it("refuses a wrong origin, a wrong RP ID and an unverified person (WEBAUTHN_VERIFICATION_FAILED)", async () => {
    const { account, access, authenticator } = await withPasskey("pk-verify");
    for (const overrides of [{ origin: "https://id.example.test.evil.example" }, { origin: "http://id.example.test" }, { rpId: "evil.example" }, { rpId: "id.example.test" }, { unverified: true }]) {
      const start = await passkeys.startPasskeyLogin({});
      const response = JSON.stringify(authenticator.get(start.optionsJson, overrides));
      await t.expectUnchanged(
        () => expectError(passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response }), { code: Code.Unauthenticated, reason: "WEBAUTHN_VERIFICATION_FAILED" }),
        SPENT,
      );
      // The refused attempt spent the challenge: the right response on it is refused too.
      await t.expectUnchanged(
        () => expectError(passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: JSON.stringify(authenticator.get(start.optionsJson)) }), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
        AUDIT_AND_LIMITS,
      );
    }
    const failures = (await audited(account.userId, "PASSKEY_LOGIN_FAILED")).filter((e) => (e.details as { cause?: string }).cause === "verification_failed");
    expect(failures).toHaveLength(5);
    expect(failures[0]!.details).toMatchObject({ cause: "verification_failed" });

    const fresh = bearer((await auth.reauthenticate({ password: PASSWORD }, access)).tokens!.accessToken);
    for (const overrides of [{ origin: "https://evil.example" }, { rpId: "evil.example" }, { unverified: true }]) {
      const start = await passkeys.startPasskeyRegistration({}, fresh);
      const response = JSON.stringify(new SoftAuthenticator(ORIGIN).create(start.optionsJson, overrides));
      await t.expectUnchanged(
        () => expectError(passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: response, name: "" }, fresh), { code: Code.Unauthenticated, reason: "WEBAUTHN_VERIFICATION_FAILED" }),
        ["webauthn_challenges"],
      );
      await t.expectUnchanged(
        () => expectError(passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: JSON.stringify(new SoftAuthenticator(ORIGIN).create(start.optionsJson)), name: "" }, fresh), { code: Code.Unauthenticated, reason: "WEBAUTHN_CHALLENGE_INVALID" }),
      );
    }
    // The second listed origin is accepted.
    expect((await signInWith(authenticator, { origin: "https://app.example.test" })).user?.id).toBe(account.userId);
    await t.expectNothingStored(async () => {
      await expectError(passkeys.finishPasskeyLogin({ challengeId: "", responseJson: "" }), { code: Code.InvalidArgument, fields: ["challenge_id", "response_json"] });
      await expectError(passkeys.finishPasskeyLogin({ challengeId: "00000000-0000-4000-8000-000000000000", responseJson: "{\"no\":1}" }), { code: Code.InvalidArgument, fields: ["response_json"] });
    });
  });

  it("refuses a counter that went back (a cloned authenticator), audited; both 0 is no counter", async () => {
    const { account, authenticator, passkey } = await withPasskey("pk-counter");
    await signInWith(authenticator); // counter 1
    await signInWith(authenticator); // counter 2
    for (const counter of [2, 1, 0]) {
      const start = await passkeys.startPasskeyLogin({});
      const response = JSON.stringify(authenticator.get(start.optionsJson, { counter }));
      await t.expectUnchanged(
        () => expectError(passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response }), { code: Code.Unauthenticated, reason: "PASSKEY_COUNTER_REGRESSED" }),
        SPENT,
      );
    }
    expect(await passkeyRow(passkey.credentialId)).toMatchObject({ sign_count: "2" });
    const failed = await audited(account.userId, "PASSKEY_LOGIN_FAILED");
    expect(failed.map((e) => e.details)).toEqual(Array(3).fill({ cause: "counter_regressed", passkey_id: passkey.id }));
    // The original, moving on, still signs in.
    expect((await signInWith(authenticator, { counter: 7 })).user?.id).toBe(account.userId);
  });

  it("of concurrent finishes with one challenge, or one counter value, exactly one signs in", async () => {
    const { account, authenticator, passkey } = await withPasskey("pk-race");
    const start = await passkeys.startPasskeyLogin({});
    const response = JSON.stringify(authenticator.get(start.optionsJson));
    const sameChallenge = await Promise.allSettled(Array.from({ length: 5 }, () => passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response })));
    expect(sameChallenge.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    // A clone racing the original: two challenges, both answers reporting the same counter.
    const starts = await Promise.all([passkeys.startPasskeyLogin({}), passkeys.startPasskeyLogin({})]);
    const answers = starts.map((s) => JSON.stringify(authenticator.get(s.optionsJson, { counter: 5 })));
    const sameCounter = await Promise.allSettled(starts.map((s, i) => passkeys.finishPasskeyLogin({ challengeId: s.challengeId, responseJson: answers[i]! })));
    expect(sameCounter.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    expect(await passkeyRow(passkey.credentialId)).toMatchObject({ sign_count: "5" });
    expect(await audited(account.userId, "PASSKEY_LOGIN")).toHaveLength(2);
  });

  it("refuses a deleted account's passkey as Login refuses it (ACCOUNT_DELETED, only after the signature)", async () => {
    const { access, authenticator } = await withPasskey("pk-deleted");
    await auth.deleteAccount({ password: PASSWORD }, access);
    const start = await passkeys.startPasskeyLogin({});
    const response = JSON.stringify(authenticator.get(start.optionsJson));
    await t.expectUnchanged(
      () => expectError(passkeys.finishPasskeyLogin({ challengeId: start.challengeId, responseJson: response }), { code: Code.PermissionDenied, reason: "ACCOUNT_DELETED" }),
      SPENT,
    );
  });
});
