// Sign-in with an OpenID Connect provider in real Chromium, over gRPC-web and Connect, against a
// real provider (oidc-provider, test/support/oidc-provider.ts): the "Sign in with Test provider"
// button, the provider's own login page, the way back to the app, signed in; a password account
// links the provider from its security page, signs in with it, and unlinks it.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOidcProvider, type TestOidcProvider } from "../support/oidc-provider.js";
import { freePort } from "../support/ports.js";
import { prepared, setupService } from "../support/setup.js";
import { uniqueEmail } from "../support/accounts.js";
import { AppPage, type Transport } from "./app.js";
import { expectRefreshTokenHidden, launchChromium, recordTraffic, screenshots, type Traffic } from "./browser.js";

const PASSWORD = "a long enough passphrase";
const chromium = prepared(launchChromium, (browser) => browser.close());

let op: TestOidcProvider | undefined;
const provider = () => op!;
// The app's own URL is the redirect URI, so its port is chosen before the service starts.
const t = setupService(async () => {
  const port = await freePort();
  const appUrl = `http://127.0.0.1:${port}/`;
  op = await startTestOidcProvider({ redirectUris: [appUrl] });
  return { env: { HTTP_PORT: String(port), OIDC_PROVIDERS: JSON.stringify([op.providerConfig("test", "Test provider")]), OIDC_REDIRECT_URIS: appUrl } };
});
afterAll(async () => {
  await op?.close();
});

/**
 * Starts the provider's sign-in with `click`, and signs in on its development login page (any
 * password; the login names the account). The provider's own session is forgotten first, as if
 * the person had signed out there, so every sign-in shows its login page.
 */
async function signInAtProvider(page: Page, click: () => Promise<void>, login: string): Promise<void> {
  const context = page.context();
  const keep = (await context.cookies()).filter((c) => !c.name.startsWith("_session"));
  await context.clearCookies();
  await context.addCookies(keep);
  await click();
  await page.waitForURL((url) => url.href.startsWith(`${provider().issuer}/interaction/`));
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill("any password");
  await page.locator("button[type=submit]").click();
  await page.waitForURL((url) => url.href.startsWith(t.httpUrl));
}

const providerButton = (page: Page) => () => page.getByRole("button", { name: "Sign in with Test provider" }).click();

describe.each<Transport>(["grpc-web", "connect"])("signing in with a provider over %s", (transport) => {
  const shot = screenshots(`federation-${transport}`);
  let context: BrowserContext;
  let page: Page;
  let app: AppPage;
  let traffic: Traffic;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    context = await chromium().newContext();
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    traffic = recordTraffic(page);
    app = new AppPage(page);
  });
  afterAll(async () => {
    await context?.close();
  });

  it("clicks \"Sign in with Test provider\", signs in on the provider's page and lands signed in", async () => {
    const login = `browser-${transport}`;
    const email = `${login}@provider.example`;
    provider().addAccount(login, { email, email_verified: true, name: `Browser ${transport}` });
    await app.open(t.httpUrl, `?transport=${transport}`);
    await shot(page, "signed-out");
    await signInAtProvider(page, providerButton(page), login);
    await app.signedIn();
    expect(await app.notice()).toBe("Welcome! Your account was created and you are signed in.");
    const who = await app.whoAmI();
    expect(who.Email).toBe(`${email} (verified)`);
    expect(who["Signed in with"]).toBe("fed");
    expect(await app.status()).toBe(`Signed in as Browser ${transport} · ${transport === "connect" ? "Connect" : "gRPC-web"}`);
    // The provider's parameters are gone from the address bar; the transport stayed.
    expect(new URL(page.url()).search).toBe(`?transport=${transport}`);
    await expect.poll(() => page.locator("#linked-identity-list li").allInnerTexts()).toEqual([expect.stringContaining(`Test provider (${email})`)]);
    await expectRefreshTokenHidden(page, context, traffic);
    await shot(page, "signed-in");

    // Signed out and back in: the same account, no new one.
    await app.click("logout-button");
    await app.signedOut();
    await signInAtProvider(page, providerButton(page), login);
    await app.signedIn();
    expect(await app.notice()).toBe("You are signed in.");
    expect((await app.whoAmI())["User id"]).toBe(who["User id"]);
    expect(pageErrors).toEqual([]);
  });

  it("links the provider to a password account from its security page, signs in with it, and unlinks it", async () => {
    const login = `linker-${transport}`;
    provider().addAccount(login, { email: `${login}@elsewhere.example`, email_verified: true });
    await app.click("logout-button");
    await app.signedOut();
    const email = uniqueEmail(`link-${transport}`);
    await app.submit("signup-form", { email, password: PASSWORD });
    await app.signedIn();
    await signInAtProvider(page, () => app.submit("link-identity-form", { provider: "test" }), login);
    await app.signedIn();
    expect(await app.notice()).toBe("Test provider is now linked: you can sign in with it.");
    await expect.poll(() => page.locator("#linked-identity-list li").count()).toBe(1);
    await shot(page, "linked");

    await app.click("logout-button");
    await app.signedOut();
    await signInAtProvider(page, providerButton(page), login);
    await app.signedIn();
    expect((await app.whoAmI()).Email).toBe(`${email} (not verified)`);

    await page.locator("#linked-identity-list li").getByRole("button", { name: "Unlink" }).click();
    expect(await app.notice()).toBe("Test provider is no longer linked.");
    await expect.poll(() => page.locator("#linked-identity-list li").count()).toBe(0);
    await shot(page, "unlinked");
    expect(pageErrors).toEqual([]);
  });
});
