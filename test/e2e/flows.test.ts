// Every flow of the browser app, by hand as a person does it, in real Chromium, over gRPC-web
// and over Connect: sign-up, password login (wrong password first), session restore on reload,
// refresh, sessions and revocation, activity, TOTP set-up from the QR code (wrong code first),
// the MFA challenge by TOTP (wrong code first) and by backup code, one-time-code sign-up read
// from the development outbox (wrong code first), log out and log out everywhere. Throughout:
// the refresh token is only ever an HttpOnly cookie, never visible to page script.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { generateSync } from "otplib";
import type { BrowserContext, Page } from "playwright-core";
import QRCode from "qrcode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { uniqueEmail, uniquePhone } from "../support/accounts.js";
import { prepared, setupService } from "../support/setup.js";
import { AppPage, type Transport } from "./app.js";
import { expectRefreshTokenHidden, launchChromium, protocolOf, recordTraffic, refreshCookie, screenshots, type Chromium, type Traffic } from "./browser.js";

const PASSWORD = "a long enough passphrase";

const chromium = prepared(launchChromium, (browser) => browser.close());
const t = setupService();

const totpAt = (secret: string, offsetSec: number) => generateSync({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSec });

/** A 6-digit code that is none of the codes the server accepts right now (steps -1, 0, +1). */
function wrongTotp(secret: string): string {
  const valid = new Set([-30, 0, 30, 60].map((offset) => totpAt(secret, offset)));
  let code = Number(totpAt(secret, 0));
  do code = (code + 1) % 1_000_000;
  while (valid.has(String(code).padStart(6, "0")));
  return String(code).padStart(6, "0");
}

describe.each<Transport>(["grpc-web", "connect"])("the browser app over %s", (transport) => {
  const other: Transport = transport === "connect" ? "grpc-web" : "connect";
  const shot = screenshots(transport);
  let context: BrowserContext;
  let page: Page;
  let app: AppPage;
  let traffic: Traffic;
  const pageErrors: string[] = [];
  const email = uniqueEmail(`e2e-${transport}`);
  let userId = "";
  let totpSecret = "";
  let backupCodes: string[] = [];

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

  it(`switches to ${transport} and every call then speaks it`, async () => {
    await app.open(t.httpUrl, `?transport=${other}`);
    expect(await app.status()).toContain(other === "connect" ? "Connect" : "gRPC-web");
    const startup = traffic.rpcs.length;
    expect(traffic.rpcs.map(protocolOf)).toEqual(traffic.rpcs.map(() => other)); // the start-up refresh
    await app.chooseTransport(transport);
    expect(page.url()).toContain(`transport=${transport}`);
    expect(await app.notice()).toBe(`Calls now use the ${transport === "connect" ? "Connect" : "gRPC-web"} protocol.`);
    await shot(page, "signed-out");
    // The rest of this file checks each later call's protocol.
    expect(startup).toBeGreaterThan(0);
    traffic.rpcs.length = 0;
  });

  it("refuses a weak password at sign-up with a plain sentence", async () => {
    await app.submit("signup-form", { email, password: "short" });
    expect(await app.error()).toBe("The password must be at least 8 characters.");
    await shot(page, "sign-up-weak-password");
  });

  it("signs up and shows who I am and the access token's claims", async () => {
    await app.submit("signup-form", { email, username: `e2e_${transport.replace("-", "_")}_${Date.now() % 1e6}`, displayName: "Ada Browser", password: PASSWORD });
    await app.signedIn();
    expect(await app.notice()).toBe("Your account was created and you are signed in.");
    const who = await app.whoAmI();
    expect(who.Email).toBe(`${email} (not verified)`);
    expect(who.Name).toBe("Ada Browser");
    expect(who["Signed in with"]).toBe("pwd");
    userId = who["User id"]!;
    const claims = await app.claims();
    expect(claims).toMatchObject({ sub: userId, sid: who.Session, amr: ["pwd"], role: "user", aud: t.config.audience, iss: t.config.issuer });
    expect(await app.status()).toBe(`Signed in as Ada Browser · ${transport === "connect" ? "Connect" : "gRPC-web"}`);
    await expectRefreshTokenHidden(page, context, traffic);
    await shot(page, "signed-up");
  });

  it("refreshes: a new access token, and the gateway rotates the cookie", async () => {
    const before = await app.claims();
    const cookieBefore = (await refreshCookie(context))!.value;
    await app.click("refresh-button");
    expect(await app.notice()).toContain("Tokens refreshed");
    await expect.poll(async () => (await app.claims()).jti).not.toBe(before.jti);
    const cookieAfter = await expectRefreshTokenHidden(page, context, traffic);
    expect(cookieAfter).not.toBe(cookieBefore);
    await shot(page, "refreshed");
  });

  it("keeps the session across a reload through the cookie alone (the access token was only in memory)", async () => {
    await app.reload();
    await app.signedIn();
    expect((await app.whoAmI())["User id"]).toBe(userId);
    await expectRefreshTokenHidden(page, context, traffic);
  });

  it("lists sessions and revokes another device's", async () => {
    // Another device signs in (a non-browser client: it gets its refresh token in the body).
    const device = createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });
    const login = await createClient(AuthService, device).login({ identifier: email, password: PASSWORD });
    if (login.result.case !== "tokens") throw new Error("expected tokens");
    const deviceRefresh = login.result.value.refreshToken;
    expect(deviceRefresh).not.toBe("");

    await app.click("sessions-reload");
    await expect.poll(() => app.sessionRows().count()).toBe(2);
    const mine = app.sessionRows().filter({ hasText: "this session" });
    expect(await mine.count()).toBe(1);
    await shot(page, "sessions");
    await app.sessionRows().filter({ hasNot: page.getByText("this session") }).getByRole("button", { name: "Revoke" }).click();
    expect(await app.notice()).toBe("The session was ended.");
    await expect.poll(() => app.sessionRows().count()).toBe(1);
    await expect(createClient(TokenService, device).refreshToken({ refreshToken: deviceRefresh })).rejects.toThrow();
    await shot(page, "session-revoked");
  });

  it("shows the account's activity", async () => {
    await app.click("activity-reload");
    await expect.poll(() => app.activityTypes()).toEqual(expect.arrayContaining(["SIGN_UP", "LOGIN_SUCCEEDED", "SESSION_REVOKED"]));
    expect(await page.locator("#activity-list").innerText()).toContain("Session ended");
    await shot(page, "activity");
  });

  it("logs out: signed out, and the cookie is gone", async () => {
    await app.click("logout-button");
    await app.signedOut();
    expect(await app.notice()).toBe("You are signed out.");
    expect(await refreshCookie(context)).toBeUndefined();
    await shot(page, "logged-out");
  });

  it("refuses a wrong password with a plain sentence, then logs in", async () => {
    await app.submit("login-form", { identifier: email, password: "not the password at all" });
    expect(await app.error()).toBe("The username, email, phone number or password is not correct.");
    await shot(page, "wrong-password");
    await app.submit("login-form", { identifier: email, password: PASSWORD });
    await app.signedIn();
    expect(await app.notice()).toBe("You are signed in.");
    await expectRefreshTokenHidden(page, context, traffic);
    await shot(page, "logged-in");
  });

  it("sets up TOTP from the QR code: a wrong code is refused, the right one turns it on and shows backup codes once", async () => {
    await app.click("totp-setup-button");
    const qr = page.locator("#totp-qr");
    await qr.waitFor();
    totpSecret = (await page.locator("#totp-secret").innerText()).trim();
    expect(totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    const otpauth = (await page.locator("#totp-url").textContent())!.trim();
    const url = new URL(otpauth);
    expect(url.protocol).toBe("otpauth:");
    expect(url.searchParams.get("secret")).toBe(totpSecret);
    expect(decodeURIComponent(url.pathname)).toContain(email);
    // The picture encodes exactly that URL (the same encoder, the same settings), and it loaded
    // under the page's Content-Security-Policy.
    const src = await qr.getAttribute("src");
    expect(src).toBe(await QRCode.toDataURL(otpauth, { errorCorrectionLevel: "M", margin: 2, width: 240 }));
    expect(await qr.evaluate((img) => (img as HTMLImageElement).complete && (img as HTMLImageElement).naturalWidth)).toBe(240);
    await shot(page, "totp-qr");

    await app.submit("totp-confirm-form", { code: wrongTotp(totpSecret) });
    expect(await app.error()).toBe("That authenticator or backup code is not correct.");
    await shot(page, "totp-wrong-code");

    await app.submit("totp-confirm-form", { code: totpAt(totpSecret, 0) });
    expect(await app.notice()).toBe("Two-step verification is on.");
    const codes = page.locator("#backup-code-list li");
    await expect.poll(() => codes.count()).toBe(10);
    backupCodes = await codes.allInnerTexts();
    await expect.poll(() => page.locator("#mfa-status").innerText()).toContain("Backup codes left: 10");
    await shot(page, "totp-on-backup-codes");
    await app.click("backup-codes-done");
    expect(await codes.count()).toBe(0);
    expect(await page.locator("#backup-codes").isHidden()).toBe(true);
  });

  it("passes the MFA challenge with a TOTP code after refusing a wrong one", async () => {
    await app.click("logout-button");
    await app.signedOut();
    await app.submit("login-form", { identifier: email, password: PASSWORD });
    await app.challenged();
    expect(await refreshCookie(context)).toBeUndefined();
    await shot(page, "mfa-challenge");
    await app.submit("mfa-form", { code: wrongTotp(totpSecret) });
    expect(await app.error()).toBe("That authenticator or backup code is not correct.");
    await shot(page, "mfa-wrong-totp");
    // The confirmation spent the current time step; the next one is within the accepted window.
    await app.submit("mfa-form", { code: totpAt(totpSecret, 30) });
    await app.signedIn();
    expect((await app.whoAmI())["Two-step verification"]).toBe("on");
    expect((await app.claims()).amr).toEqual(["pwd", "otp", "mfa"]);
    await expectRefreshTokenHidden(page, context, traffic);
    await shot(page, "mfa-passed-totp");
  });

  it("passes the MFA challenge with a backup code", async () => {
    await app.click("logout-button");
    await app.signedOut();
    await app.submit("login-form", { identifier: email, password: PASSWORD });
    await app.challenged();
    await page.locator("#mfa-form input[name=method][value=backup]").check();
    await app.submit("mfa-form", { code: backupCodes[0]! });
    await app.signedIn();
    expect((await app.claims()).amr).toEqual(["pwd", "kba", "mfa"]);
    await expect.poll(() => page.locator("#mfa-status").innerText()).toContain("Backup codes left: 9");
    await app.click("activity-reload");
    await expect.poll(() => app.activityTypes()).toEqual(expect.arrayContaining(["MFA_ENABLED", "MFA_FAILED", "BACKUP_CODE_USED"]));
    await shot(page, "mfa-passed-backup-code");
  });

  it("logs out everywhere", async () => {
    await app.click("logout-all-button");
    await app.signedOut();
    expect(await app.notice()).toMatch(/^You are signed out everywhere \(\d+ sessions? ended\)\.$/);
    expect(await refreshCookie(context)).toBeUndefined();
  });

  it("signs up with a one-time code read from the development outbox, after a wrong code", async () => {
    const channel = transport === "connect" ? "sms" : "email";
    const destination = channel === "sms" ? uniquePhone() : uniqueEmail(`e2e-otp-${transport}`);
    await app.submit("otp-send-form", { channel, destination });
    expect(await app.notice()).toBe("Code sent. It is valid for a few minutes.");
    const code = await app.outboxCode(destination);
    await shot(page, "otp-outbox");
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    await app.submit("otp-verify-form", { code: wrong });
    expect(await app.error()).toBe("That code is not correct. Check the code and try again.");
    await shot(page, "otp-wrong-code");
    await app.submit("otp-verify-form", { code });
    await app.signedIn();
    expect(await app.notice()).toBe("Welcome! Your account was created and you are signed in.");
    const who = await app.whoAmI();
    expect(who[channel === "sms" ? "Phone" : "Email"]).toBe(`${destination} (verified)`);
    expect(who.Password).toBe("none (signs in with codes)");
    expect((await app.claims()).amr).toEqual(["otp", channel]);
    await expectRefreshTokenHidden(page, context, traffic);
    await shot(page, "otp-signed-in");
    await app.click("logout-button");
    await app.signedOut();
  });

  it(`made every call after the switch over ${transport}, and no answer carried a refresh token`, () => {
    expect(pageErrors).toEqual([]);
    expect(traffic.rpcs.length).toBeGreaterThan(20);
    expect(new Set(traffic.rpcs.map(protocolOf))).toEqual(new Set([transport]));
    const methods = new Set(traffic.rpcs.map((r) => r.method));
    for (const m of ["AuthService/SignUp", "AuthService/Login", "TokenService/RefreshToken", "OtpService/SendOtp", "OtpService/VerifyOtp", "MfaService/SetupTotp", "MfaService/ConfirmTotp", "MfaService/VerifyMfa", "AuthService/RevokeSession", "AuthService/ListActivity", "AuthService/Logout"]) {
      expect(methods).toContain(m);
    }
    expect(traffic.refreshTokens.size).toBeGreaterThan(5);
    for (const token of traffic.refreshTokens) {
      for (const rpc of traffic.rpcs) expect(rpc.body.includes(token)).toBe(false);
    }
  });
});
