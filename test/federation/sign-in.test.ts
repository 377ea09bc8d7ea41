// Sign-in with an OpenID Connect provider against a real one (oidc-provider), at the RPC level:
// new account, returning account, linking by a verified email address, the refusals.
import { Code } from "@connectrpc/connect";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { FederationService } from "../../gen/identity/v1/federation_service_pb.js";
import { PasskeyService } from "../../gen/identity/v1/passkey_service_pb.js";
import { ManualClock } from "../../src/domain/clock.js";
import { auditRows, bearer } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { SoftAuthenticator } from "../support/webauthn.js";
import { authorize, federatedSignIn, providerAccount, REDIRECT_URI, setupFederation } from "./support.js";

const clock = new ManualClock();
const { t, op } = setupFederation({ clock, env: { REAUTH_MAX_AGE_SECONDS: "60", WEBAUTHN_RP_ID: "id.example.test", WEBAUTHN_ORIGINS: "https://id.example.test" } });
/** What a refused finish may change: the state it spent, and the account's audit trail. */
const SPENT_STATE = ["federation_states", "audit_events"];

async function verifyEmail(userId: string): Promise<void> {
  await t.db.query(`UPDATE users SET email_verified_at = now() WHERE id = $1`, [userId]);
}

describe.each(transportNames)("federated sign-in over %s", (name) => {
  const { auth } = t.clients(name);
  const federation = t.clients(name).client(FederationService);

  it("lists the configured providers to anyone", async () => {
    const { providers } = await federation.listProviders({});
    expect(providers.map((p) => [p.id, p.name])).toEqual([["test", "Test provider"], ["flaky", "Flaky provider"]]);
  });

  it("creates an account on first sign-in, and signs the same account in the next time", async () => {
    const person = providerAccount(op(), "new");
    const first = await federatedSignIn(federation, op(), person.login);
    expect(first.newUser).toBe(true);
    expect(first.linked).toBe(false);
    expect(first.login?.result.case).toBe("tokens");
    const user = first.login!.user!;
    expect(user.email).toBe(person.email);
    expect(user.emailVerified).toBe(true);
    expect(user.displayName).toBe("Person new");
    const tokens = first.login!.result.value as { accessToken: string };
    const me = await auth.whoAmI({}, bearer(tokens.accessToken));
    expect(me.user?.id).toBe(user.id);
    expect(me.amr).toEqual(["fed"]);
    const { identities } = await federation.listLinkedIdentities({}, bearer(tokens.accessToken));
    expect(identities.map((i) => [i.provider, i.email])).toEqual([["test", person.email]]);

    const again = await federatedSignIn(federation, op(), person.login);
    expect(again.newUser).toBe(false);
    expect(again.login?.user?.id).toBe(user.id);
    // (The test clock stands still: rows of one instant are compared as a set.)
    const audit = await auditRows(t.db, user.id);
    expect(audit.map((r) => r.type).sort()).toEqual(["FEDERATED_LOGIN", "FEDERATED_LOGIN", "SIGN_UP"]);
    expect(audit.filter((r) => r.type === "FEDERATED_LOGIN").map((r) => r.details.new_user).sort()).toEqual(["false", "true"]);
    expect(audit.find((r) => r.type === "SIGN_UP")?.details).toEqual({ method: "fed", provider: "test" });
  });
});

describe("linking by email address", () => {
  const federation = t.clients().client(FederationService);

  it("links the account whose address is verified here when the provider asserts it verified", async () => {
    const person = providerAccount(op(), "link");
    const account = await t.signUp("link", { email: person.email });
    await verifyEmail(account.userId);
    const signedIn = await federatedSignIn(federation, op(), person.login);
    expect(signedIn).toMatchObject({ newUser: false, linked: true });
    expect(signedIn.login?.user?.id).toBe(account.userId);
    const audit = await auditRows(t.db, account.userId);
    expect(audit.filter((r) => r.type === "IDENTITY_LINKED").map((r) => r.details)).toEqual([{ provider: "test", how: "verified_email" }]);
  });

  it("refuses, storing nothing, when the address is not verified here: sign in and link explicitly", async () => {
    const person = providerAccount(op(), "unverified-here");
    const account = await t.signUp("unverified-here", { email: person.email });
    const callback = await authorize(federation, op(), person.login);
    await t.expectUnchanged(
      () => expectError(federation.finishFederatedLogin(callback), { code: Code.FailedPrecondition, reason: "FEDERATION_LINK_REQUIRED" }),
      SPENT_STATE,
    );
    const audit = await auditRows(t.db, account.userId);
    expect(audit.filter((r) => r.type === "FEDERATED_LOGIN_FAILED").map((r) => r.details)).toEqual([{ provider: "test", reason: "FEDERATION_LINK_REQUIRED" }]);
    expect(await t.db.query(`SELECT 1 FROM federated_identities WHERE user_id = $1`, [account.userId])).toEqual([]);
  });

  it("refuses when the provider does not assert the address verified, though it is verified here", async () => {
    const person = providerAccount(op(), "unverified-there", { email_verified: false });
    const account = await t.signUp("unverified-there", { email: person.email });
    await verifyEmail(account.userId);
    const callback = await authorize(federation, op(), person.login);
    await t.expectUnchanged(
      () => expectError(federation.finishFederatedLogin(callback), { code: Code.FailedPrecondition, reason: "FEDERATION_LINK_REQUIRED" }),
      SPENT_STATE,
    );
  });

  it("creates an account with the address unverified when the provider does not verify it and no account has it", async () => {
    const person = providerAccount(op(), "unverified-new", { email_verified: false });
    const signedIn = await federatedSignIn(federation, op(), person.login);
    expect(signedIn.newUser).toBe(true);
    expect(signedIn.login?.user).toMatchObject({ email: person.email, emailVerified: false });
  });

  it("refuses a disabled account as Login does", async () => {
    const person = providerAccount(op(), "disabled");
    const first = await federatedSignIn(federation, op(), person.login);
    await t.db.query(`UPDATE users SET status = 'disabled' WHERE id = $1`, [first.login!.user!.id]);
    const callback = await authorize(federation, op(), person.login);
    await t.expectUnchanged(
      () => expectError(federation.finishFederatedLogin(callback), { code: Code.PermissionDenied, reason: "ACCOUNT_DISABLED" }),
      SPENT_STATE,
    );
  });
});

describe("the state, the code and the ID token", () => {
  const federation = t.clients().client(FederationService);

  it("takes a state once: a replayed callback changes nothing", async () => {
    const person = providerAccount(op(), "replay");
    const callback = await authorize(federation, op(), person.login);
    await federation.finishFederatedLogin(callback);
    await t.expectUnchanged(() => expectError(federation.finishFederatedLogin(callback), { code: Code.Unauthenticated, reason: "FEDERATION_STATE_INVALID" }));
  });

  it("refuses an expired state, changing nothing", async () => {
    const person = providerAccount(op(), "expired");
    const callback = await authorize(federation, op(), person.login);
    clock.advance(t.config.federation.stateTtlSec * 1000 + 1000);
    await t.expectUnchanged(() => expectError(federation.finishFederatedLogin(callback), { code: Code.Unauthenticated, reason: "FEDERATION_STATE_INVALID" }));
  });

  it("refuses a state nobody started, and an empty one", async () => {
    await t.expectUnchanged(() => expectError(federation.finishFederatedLogin({ state: "made-up", code: "x" }), { code: Code.Unauthenticated, reason: "FEDERATION_STATE_INVALID" }));
    await expectError(federation.finishFederatedLogin({ state: "", code: "" }), { code: Code.InvalidArgument, fields: ["state", "code"] });
  });

  it("refuses an ID token whose nonce is not the one the sign-in bound (a code injected from another request)", async () => {
    const person = providerAccount(op(), "nonce");
    const callback = await authorize(federation, op(), person.login, (url) => url.searchParams.set("nonce", "attacker-chosen-nonce"));
    await t.expectUnchanged(
      () => expectError(federation.finishFederatedLogin(callback), { code: Code.Unauthenticated, reason: "ID_TOKEN_INVALID" }),
      SPENT_STATE,
    );
    const [row] = (await t.db.query(`SELECT details FROM audit_events WHERE type = 'FEDERATED_LOGIN_FAILED' AND user_id IS NULL ORDER BY created_at DESC LIMIT 1`)) as Array<{ details: Record<string, string> }>;
    expect(row?.details).toEqual({ provider: "test", reason: "ID_TOKEN_INVALID" });
  });

  it("refuses an ID token signed by a key the provider did not publish", async () => {
    const person = providerAccount(op(), "resigned");
    const callback = await authorize(federation, op(), person.login);
    op().mode = "resign";
    try {
      await t.expectUnchanged(
        () => expectError(federation.finishFederatedLogin(callback), { code: Code.Unauthenticated, reason: "ID_TOKEN_INVALID" }),
        SPENT_STATE,
      );
    } finally {
      op().mode = "normal";
    }
    // The same flow with the provider's own signature passes.
    expect((await federatedSignIn(federation, op(), person.login)).newUser).toBe(true);
  });

  it("refuses a code the provider did not issue for this sign-in", async () => {
    const person = providerAccount(op(), "code");
    const callback = await authorize(federation, op(), person.login);
    await t.expectUnchanged(
      () => expectError(federation.finishFederatedLogin({ ...callback, code: "not-a-code" }), { code: Code.Unauthenticated, reason: "FEDERATION_CODE_INVALID" }),
      SPENT_STATE,
    );
  });

  it("refuses redirect URIs off PUBLIC_URL's origin and OIDC_REDIRECT_URIS, storing nothing", async () => {
    for (const redirectUri of ["https://evil.example/callback", `${REDIRECT_URI}/more`, `${REDIRECT_URI}?next=https://evil.example`, "http://app.test.evil.example/callback", "javascript:alert(1)", ""]) {
      await t.expectUnchanged(() =>
        expectError(federation.startFederatedLogin({ provider: "test", redirectUri }), { code: Code.InvalidArgument, fields: ["redirect_uri"] }),
      );
    }
    await expectError(federation.startFederatedLogin({ provider: "nope", redirectUri: REDIRECT_URI }), { code: Code.InvalidArgument, fields: ["provider"] });
  });

  it("answers UNAVAILABLE with RetryInfo while the provider is down, storing nothing, and reads its discovery later", async () => {
    op().mode = "down";
    try {
      const error = await t.expectUnchanged(() =>
        expectError(federation.startFederatedLogin({ provider: "flaky", redirectUri: REDIRECT_URI }), { code: Code.Unavailable, reason: "PROVIDER_UNAVAILABLE" }),
      );
      expect(retryDelayMs(error)).toBeGreaterThan(0);
    } finally {
      op().mode = "normal";
    }
    // Within the retry delay the failure is answered from memory; after it, discovery runs again.
    const before = op().requests.length;
    await expectError(federation.startFederatedLogin({ provider: "flaky", redirectUri: REDIRECT_URI }), { code: Code.Unavailable, reason: "PROVIDER_UNAVAILABLE" });
    expect(op().requests.length).toBe(before);
    clock.advance(10_000);
    const started = await federation.startFederatedLogin({ provider: "flaky", redirectUri: REDIRECT_URI });
    expect(started.authorizationUrl).toContain(`${op().issuer}/auth?`);
  });

  it("puts state, nonce and a PKCE S256 challenge in the authorization URL", async () => {
    const started = await federation.startFederatedLogin({ provider: "test", redirectUri: REDIRECT_URI });
    const url = new URL(started.authorizationUrl);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: op().clientId, redirect_uri: REDIRECT_URI, response_type: "code", scope: "openid email profile", state: started.state, code_challenge_method: "S256",
    });
    expect(url.searchParams.get("nonce")).toMatch(/^[\w-]{43}$/);
    expect(url.searchParams.get("code_challenge")).toMatch(/^[\w-]{43}$/);
    // Only the state's hash is stored, never the state.
    const rows = (await t.db.query(`SELECT encode(state_hash, 'hex') AS h, redirect_uri, purpose FROM federation_states`)) as Array<{ h: string; redirect_uri: string; purpose: string }>;
    expect(rows.some((r) => r.h.includes(started.state))).toBe(false);
    expect(JSON.stringify(rows)).not.toContain(started.state);
  });
});

describe("second factor, explicit links and unlinking", () => {
  const { auth, mfa } = t.clients();
  const federation = t.clients().client(FederationService);
  const totp = (secret: string) => generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });

  it("still asks an account with TOTP for its second factor; VerifyMfa completes the sign-in", async () => {
    const person = providerAccount(op(), "mfa");
    const first = await federatedSignIn(federation, op(), person.login);
    const access = (first.login!.result.value as { accessToken: string }).accessToken;
    const setup = await mfa.setupTotp({}, bearer(access));
    await mfa.confirmTotp({ code: totp(setup.secret) }, bearer(access));
    clock.advance(30_000);
    const again = await federatedSignIn(federation, op(), person.login);
    expect(again.login?.result.case).toBe("mfaChallenge");
    expect(again.login?.user).toBeUndefined();
    const challenge = again.login!.result.value as { challengeToken: string };
    const verified = await mfa.verifyMfa({ challengeToken: challenge.challengeToken, code: { case: "totpCode", value: totp(setup.secret) } });
    const me = await auth.whoAmI({}, bearer(verified.tokens!.accessToken));
    expect(me.amr).toEqual(expect.arrayContaining(["fed", "mfa"]));
  });

  it("links a provider to a signed-in account, which then signs in with it; unlinks it again", async () => {
    const account = await t.signUp("explicit");
    const person = providerAccount(op(), "explicit", { email: "someone-else@provider.example" });
    const started = await federation.startLinkIdentity({ provider: "test", redirectUri: REDIRECT_URI }, bearer(account.tokens.accessToken));
    const callback = new URL((await op().signIn(started.authorizationUrl, person.login)).href);
    const params = { state: callback.searchParams.get("state")!, code: callback.searchParams.get("code")!, iss: callback.searchParams.get("iss") ?? "" };
    const linked = await federation.finishLinkIdentity(params, bearer(account.tokens.accessToken));
    expect(linked.identity).toMatchObject({ provider: "test", email: "someone-else@provider.example" });
    const signedIn = await federatedSignIn(federation, op(), person.login);
    expect(signedIn.login?.user?.id).toBe(account.userId);
    // A password remains: the identity may go.
    await federation.unlinkIdentity({ provider: "test", subject: linked.identity!.subject }, bearer(account.tokens.accessToken));
    expect((await federation.listLinkedIdentities({}, bearer(account.tokens.accessToken))).identities).toEqual([]);
    const audit = await auditRows(t.db, account.userId);
    expect(audit.filter((r) => r.type.startsWith("IDENTITY_")).map((r) => [r.type, r.details.how ?? ""]).sort()).toEqual([["IDENTITY_LINKED", "explicit"], ["IDENTITY_UNLINKED", ""]]);
    await expectError(federation.unlinkIdentity({ provider: "test", subject: linked.identity!.subject }, bearer(account.tokens.accessToken)), { code: Code.NotFound, reason: "IDENTITY_NOT_FOUND" });
  });

  it("does not finish a sign-in with a link's state, nor another account's link", async () => {
    const account = await t.signUp("link-state");
    const other = await t.signUp("link-state-other");
    const person = providerAccount(op(), "link-state");
    for (const finish of [
      (p: { state: string; code: string; iss: string }) => federation.finishFederatedLogin(p),
      (p: { state: string; code: string; iss: string }) => federation.finishLinkIdentity(p, bearer(other.tokens.accessToken)),
    ]) {
      const started = await federation.startLinkIdentity({ provider: "test", redirectUri: REDIRECT_URI }, bearer(account.tokens.accessToken));
      const callback = await op().signIn(started.authorizationUrl, person.login);
      const params = { state: callback.searchParams.get("state")!, code: callback.searchParams.get("code")!, iss: callback.searchParams.get("iss") ?? "" };
      await t.expectUnchanged(() => expectError(finish(params), { code: Code.Unauthenticated, reason: "FEDERATION_STATE_INVALID" }), ["federation_states"]);
    }
  });

  it("asks for a recent sign-in before linking", async () => {
    const account = await t.signUp("stale");
    // REAUTH_MAX_AGE_SECONDS=60 here, so the access token (5 minutes) is still valid.
    clock.advance((t.config.reauthMaxAgeSec + 10) * 1000);
    await t.expectUnchanged(() =>
      expectError(federation.startLinkIdentity({ provider: "test", redirectUri: REDIRECT_URI }, bearer(account.tokens.accessToken)), { code: Code.PermissionDenied, reason: "REAUTHENTICATION_REQUIRED" }),
    );
  });

  it("never unlinks the last way to sign in", async () => {
    const person = providerAccount(op(), "last");
    const first = await federatedSignIn(federation, op(), person.login);
    const access = (first.login!.result.value as { accessToken: string }).accessToken;
    const [identity] = (await federation.listLinkedIdentities({}, bearer(access))).identities;
    await t.expectUnchanged(() =>
      expectError(federation.unlinkIdentity({ provider: "test", subject: identity!.subject }, bearer(access)), { code: Code.FailedPrecondition, reason: "LAST_SIGN_IN_METHOD" }),
    );
  });

  it("unlinks the only provider of an account that has a passkey", async () => {
    const person = providerAccount(op(), "with-passkey");
    const first = await federatedSignIn(federation, op(), person.login);
    const access = (first.login!.result.value as { accessToken: string }).accessToken;
    const passkeys = t.clients().client(PasskeyService);
    const start = await passkeys.startPasskeyRegistration({}, bearer(access));
    const authenticator = new SoftAuthenticator("https://id.example.test");
    await passkeys.finishPasskeyRegistration({ challengeId: start.challengeId, responseJson: JSON.stringify(authenticator.create(start.optionsJson)), name: "Laptop" }, bearer(access));
    const [identity] = (await federation.listLinkedIdentities({}, bearer(access))).identities;
    await federation.unlinkIdentity({ provider: "test", subject: identity!.subject }, bearer(access));
    expect((await federation.listLinkedIdentities({}, bearer(access))).identities).toEqual([]);
    // The passkey is now the account's last way to sign in: it stays.
    const [passkey] = (await passkeys.listPasskeys({}, bearer(access))).passkeys;
    await t.expectUnchanged(() =>
      expectError(passkeys.removePasskey({ passkeyId: passkey!.id }, bearer(access)), { code: Code.FailedPrecondition, reason: "LAST_SIGN_IN_METHOD" }),
    );
  });
});
