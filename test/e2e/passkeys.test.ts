// Passkeys in real Chromium, over gRPC-web and over Connect, with Chromium's virtual authenticator
// (Chrome DevTools Protocol: WebAuthn.addVirtualAuthenticator, internal transport, resident keys,
// user verification): add a passkey on the security page, sign out, sign in with the passkey
// alone (amr hwk, user, mfa; the refresh token only in its HttpOnly cookie), remove it after the
// in-place password prompt (the sign-in aged past REAUTH_MAX_AGE), and a sign-in with it is then
// refused. WebAuthn needs a secure context and an RP ID that names the page's host: the app is
// opened at http://localhost:<port>, the default WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS.
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_REASONS } from "../../src/error-reasons.js";
import { uniqueEmail } from "../support/accounts.js";
import { freePort } from "../support/ports.js";
import { prepared, setupService } from "../support/setup.js";
import { AppPage, offsetClock, type Transport } from "./app.js";
import { expectRefreshTokenHidden, launchChromium, protocolOf, recordTraffic, screenshots, type Chromium, type Traffic } from "./browser.js";

const PASSWORD = "a long enough passphrase";
const REAUTH_MAX_AGE_SECONDS = 30;
const clock = offsetClock();

const chromium = prepared(launchChromium, (browser: Chromium) => browser.close());
let port = 0;
const t = setupService(async () => {
  port = await freePort();
  return { clock, env: { HTTP_PORT: String(port), REAUTH_MAX_AGE_SECONDS: String(REAUTH_MAX_AGE_SECONDS) } };
});

describe.each<Transport>(["grpc-web", "connect"])("passkeys over %s", (transport) => {
  const shot = screenshots(`passkeys-${transport}`);
  let context: BrowserContext;
  let page: Page;
  let app: AppPage;
  let traffic: Traffic;
  let cdp: CDPSession;
  let authenticatorId = "";
  const pageErrors: string[] = [];
  const email = uniqueEmail(`e2e-passkey-${transport}`);

  beforeAll(async () => {
    expect(t.config.webauthn).toMatchObject({ rpId: "localhost", origins: [`http://localhost:${port}`] });
    context = await chromium().newContext();
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    traffic = recordTraffic(page);
    cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    ({ authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    }));
    app = new AppPage(page);
    await app.open(`http://localhost:${port}`, `?transport=${transport}`);
  });
  afterAll(async () => {
    await context?.close();
  });

  const credentials = async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  const passkeyItems = () => page.locator("#passkey-list li.passkey");

  it("adds a passkey on the security page after signing up", async () => {
    await app.submit("signup-form", { email, password: PASSWORD });
    await app.signedIn();
    await expect.poll(() => page.locator("#passkey-list").innerText()).toContain("No passkeys yet.");
    await app.submit("passkey-add-form", { name: "Chromium" });
    expect(await app.notice()).toBe("Passkey added: you can sign in with it now.");
    await expect.poll(() => passkeyItems().count()).toBe(1);
    expect(await passkeyItems().locator("input[name=name]").inputValue()).toBe("Chromium");
    // The authenticator made a discoverable credential for the RP ID, bound to the account.
    const held = await credentials();
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ isResidentCredential: true, rpId: "localhost" });
    await expect.poll(() => app.activityTypes()).toContain("PASSKEY_REGISTERED");
    await shot(page, "passkey-added");
  });

  it("signs out, then signs in with the passkey alone", async () => {
    await app.click("logout-button");
    await app.signedOut();
    const mark = traffic.rpcs.length;
    await app.click("passkey-login-button");
    await app.signedIn();
    expect(await app.notice()).toBe("You are signed in with your passkey.");
    expect((await app.whoAmI())["Signed in with"]).toBe("hwk, user, mfa");
    expect((await app.whoAmI()).Email).toContain(email);
    const calls = traffic.since(mark);
    expect(calls.map((c) => c.method)).toEqual(expect.arrayContaining(["PasskeyService/StartPasskeyLogin", "PasskeyService/FinishPasskeyLogin"]));
    expect(calls.map(protocolOf)).toEqual(calls.map(() => transport));
    // As after Login: the refresh token is only in the HttpOnly cookie.
    await expectRefreshTokenHidden(page, context, traffic);
    // Counter as the virtual authenticator reports it: it signed twice (create, get).
    expect((await credentials())[0]!.signCount).toBeGreaterThan(0);
    await expect.poll(() => app.activityTypes()).toContain("PASSKEY_LOGIN");
    await shot(page, "signed-in-with-passkey");
  });

  it("renames the passkey", async () => {
    await passkeyItems().locator("input[name=name]").fill("My test browser");
    await passkeyItems().locator("button[data-action=rename]").click();
    expect(await app.notice()).toBe("The passkey was renamed.");
    await expect.poll(() => passkeyItems().locator("input[name=name]").inputValue()).toBe("My test browser");
  });

  it("removes it after the password prompt once the sign-in is older than REAUTH_MAX_AGE", async () => {
    clock.offsetMs += (REAUTH_MAX_AGE_SECONDS + 10) * 1000;
    await passkeyItems().locator("button[data-action=remove]").click();
    expect(await app.error()).toBe(ERROR_REASONS.REAUTHENTICATION_REQUIRED.browser);
    await page.locator("#passkey-reauth-form:not([hidden])").waitFor();
    await shot(page, "remove-reauth-prompt");
    await app.submit("passkey-reauth-form", { password: PASSWORD });
    expect(await app.notice()).toBe("The passkey was removed: it can no longer sign in.");
    await expect.poll(() => passkeyItems().count()).toBe(0);
    expect(await page.locator("#passkey-reauth-form").isHidden()).toBe(true);
    await shot(page, "passkey-removed");
  });

  it("refuses the removed passkey at sign-in, though the authenticator still holds it", async () => {
    await app.click("logout-button");
    await app.signedOut();
    expect(await credentials()).toHaveLength(1);
    await app.click("passkey-login-button");
    expect(await app.error()).toBe(ERROR_REASONS.PASSKEY_UNKNOWN.browser);
    await app.signedOut();
    await shot(page, "removed-passkey-refused");
    expect(pageErrors).toEqual([]);
  });
});
