// The account's own flows in real Chromium, over gRPC-web and over Connect, one account per
// transport driven through the page: sign-up with the profile attributes (MIN_AGE refusal
// first), profile editing (UpdateProfile with a mask of what changed), adding a phone and
// changing the email with the code sent to the new address (after REAUTH_MAX_AGE the change asks
// for the password in place and then continues), email/SMS codes as a second factor (enrolled,
// then used at sign-in with "send code"), change password, TOTP backup-code regeneration and
// disable, the password reset by code, and deleting the account (whose right password then
// hears "Your account has been deleted."). Codes are read from the development outbox panel.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_REASONS } from "../../src/error-reasons.js";
import { uniqueEmail, uniquePhone } from "../support/accounts.js";
import { prepared, setupService } from "../support/setup.js";
import { AppPage, offsetClock, totpCodes, type Transport } from "./app.js";
import { launchChromium, protocolOf, recordTraffic, screenshots, type Chromium, type Traffic } from "./browser.js";

const PASSWORD = "a long enough passphrase";
const NEW_PASSWORD = "another long passphrase";
const RESET_PASSWORD = "a third long passphrase";
const REAUTH_MAX_AGE_SECONDS = 30;

/** The service's clock, moved forward to age a sign-in. */
const clock = offsetClock();

const chromium = prepared(launchChromium, (browser: Chromium) => browser.close());
const t = setupService({
  clock,
  env: { REAUTH_MAX_AGE_SECONDS: String(REAUTH_MAX_AGE_SECONDS), MIN_AGE: "13", OTP_RESEND_COOLDOWN_SECONDS: "1" },
});

const isoDate = (d: Date) => d.toISOString().slice(0, 10);

describe.each<Transport>(["grpc-web", "connect"])("the account's flows over %s", (transport) => {
  const shot = screenshots(`account-${transport}`);
  let context: BrowserContext;
  let page: Page;
  let app: AppPage;
  let traffic: Traffic;
  const pageErrors: string[] = [];
  /** Request bodies of UpdateProfile calls, as sent. */
  const updateBodies: string[] = [];
  const email = uniqueEmail(`e2e-account-${transport}`);
  const newEmail = uniqueEmail(`e2e-account-new-${transport}`);
  const phone = uniquePhone();

  beforeAll(async () => {
    context = await chromium().newContext();
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    traffic = recordTraffic(page);
    page.on("request", (request) => {
      if (request.url().endsWith(".AuthService/UpdateProfile") && request.method() === "POST") updateBodies.push(request.postDataBuffer()?.toString("latin1") ?? "");
    });
    app = new AppPage(page);
    await app.open(t.httpUrl, `?transport=${transport}`);
  });
  afterAll(async () => {
    await context?.close();
  });

  const whoAmI = () => app.whoAmI();
  const activity = () => page.locator("#activity-list").innerText();

  it("signs up with the profile attributes, after MIN_AGE refuses a too recent birth date", async () => {
    const young = new Date();
    young.setUTCFullYear(young.getUTCFullYear() - 5);
    await app.submit("signup-form", { email, givenName: "Ada", familyName: "Lovelace", country: "gb", birthDate: isoDate(young), password: PASSWORD });
    expect(await app.error()).toMatch(/^The birth date .+\.$/);
    await shot(page, "sign-up-too-young");
    await app.submit("signup-form", { email, displayName: "Ada", givenName: "Ada", familyName: "Lovelace", country: "gb", birthDate: "1990-12-10", password: PASSWORD });
    await app.signedIn();
    const who = await whoAmI();
    expect(who).toMatchObject({ Name: "Ada", "Given name": "Ada", "Family name": "Lovelace", Country: "GB", "Birth date": "1990-12-10" });
    // The profile form shows the account as stored.
    expect(await page.locator("#profile-form [name=country]").inputValue()).toBe("GB");
    await shot(page, "signed-up");
  });

  it("edits the profile: only what changed is in the update mask", async () => {
    await app.submit("profile-form", { country: "XX" });
    expect(await app.error()).toMatch(/^The country .+\.$/);
    updateBodies.length = 0;
    await app.submit("profile-form", { displayName: "Countess Ada", country: "IT" });
    expect(await app.notice()).toBe("Your profile was saved.");
    // The mask's paths as sent (snake_case in binary, lowerCamel in JSON): these two, no other.
    expect(updateBodies).toHaveLength(1);
    const body = updateBodies[0]!;
    expect(body).toMatch(/display_name|displayName/);
    expect(body).toContain("country");
    for (const other of ["given_name", "givenName", "family_name", "familyName", "birth_date", "birthDate", "username"]) expect(body).not.toContain(other);
    await expect.poll(async () => (await whoAmI()).Country).toBe("IT");
    expect((await whoAmI()).Name).toBe("Countess Ada");
    expect(await app.status()).toMatch(/^Signed in as Countess Ada/);
    const updated = page.locator("#activity-list li[data-type=PROFILE_UPDATED]").first();
    await updated.waitFor();
    const text = await updated.innerText();
    expect(text).toContain("Profile updated");
    expect(text).toContain("display_name");
    expect(text).toContain("country");
    expect(text).not.toContain("given_name");
    await shot(page, "profile-updated");
  });

  it("adds a phone number with the code sent to it", async () => {
    const before = await app.outboxCount(phone);
    await app.submit("phone-change-form", { phone });
    expect(await app.notice()).toContain(`Code sent to ${phone}`);
    const code = await app.nextOutboxCode(phone, before);
    await app.submit("contact-confirm-form", { code: String((Number(code) + 1) % 1_000_000).padStart(6, "0") });
    expect(await app.error()).toBe(ERROR_REASONS.OTP_INVALID.browser);
    await app.submit("contact-confirm-form", { code });
    expect(await app.notice()).toBe(`Your phone number is now ${phone}.`);
    await expect.poll(async () => (await whoAmI()).Phone).toBe(`${phone} (verified)`);
    await shot(page, "phone-added");
  });

  it("changes the email after REAUTH_MAX_AGE: asks for the password in place, then sends the code and switches", async () => {
    clock.offsetMs += (REAUTH_MAX_AGE_SECONDS + 10) * 1000;
    await app.submit("email-change-form", { email: newEmail });
    expect(await app.error()).toBe(ERROR_REASONS.REAUTHENTICATION_REQUIRED.browser);
    await page.locator("#reauth-form:not([hidden])").waitFor();
    await shot(page, "reauth-prompt");
    await app.submit("reauth-form", { password: "not the password at all" });
    expect(await app.error()).toBe(ERROR_REASONS.WRONG_PASSWORD.browser);
    await app.submit("reauth-form", { password: PASSWORD });
    expect(await app.notice()).toContain(`Code sent to ${newEmail}`);
    expect(await page.locator("#reauth-form").isHidden()).toBe(true);
    const code = await app.nextOutboxCode(newEmail, 0);
    await app.submit("contact-confirm-form", { code });
    expect(await app.notice()).toBe(`Your email address is now ${newEmail}.`);
    await expect.poll(async () => (await whoAmI()).Email).toBe(`${newEmail} (verified)`);
    await app.click("activity-reload");
    await expect.poll(() => app.activityTypes()).toEqual(expect.arrayContaining(["CONTACT_CHANGE_REQUESTED", "CONTACT_CHANGED", "REAUTHENTICATED"]));
    expect(await activity()).toContain("Identity confirmed again");
    await shot(page, "email-changed");
  });

  it("enrols codes by text message as a second factor and signs in with one, sent by the MFA step's button", async () => {
    await app.fill("code-factor-form", { channel: "sms", password: PASSWORD });
    await page.locator("#code-factor-form button[value=enable]").click();
    expect(await app.notice()).toBe("Codes by text message now confirm your password sign-ins.");
    await expect.poll(() => page.locator("#code-factor-status").getAttribute("data-sms")).toBe("true");
    await app.click("logout-button");
    await app.signedOut();
    await app.submit("login-form", { identifier: newEmail, password: PASSWORD });
    await app.challenged();
    const methods = await page.locator("#mfa-form input[name=method]").evaluateAll((inputs) => inputs.map((i) => (i as HTMLInputElement).value));
    expect(methods).toEqual(["sms"]);
    expect(await page.locator("#mfa-send-code").isVisible()).toBe(true);
    const before = await app.outboxCount(phone);
    await app.click("mfa-send-code");
    expect(await app.notice()).toBe("Code sent by text message. It is valid for a few minutes.");
    const code = await app.nextOutboxCode(phone, before);
    await shot(page, "mfa-sms-challenge");
    await app.submit("mfa-form", { code });
    await app.signedIn();
    expect((await app.claims()).amr).toEqual(expect.arrayContaining(["pwd", "mfa"]));
    // Off again, so the later sign-ins need the password alone.
    await app.fill("code-factor-form", { channel: "sms", password: PASSWORD });
    await page.locator("#code-factor-form button[value=disable]").click();
    expect(await app.notice()).toBe("Codes by text message no longer confirm your sign-ins.");
    await expect.poll(() => page.locator("#code-factor-status").getAttribute("data-sms")).toBe("false");
  });

  it("changes the password (a wrong current one refused first)", async () => {
    await app.submit("password-change-form", { currentPassword: "not the password at all", newPassword: NEW_PASSWORD });
    expect(await app.error()).toBe(ERROR_REASONS.WRONG_PASSWORD.browser);
    await app.submit("password-change-form", { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
    expect(await app.notice()).toMatch(/^Your password was changed/);
    await shot(page, "password-changed");
  });

  it("regenerates the backup codes with a TOTP code, then turns TOTP off with the password and a backup code", async () => {
    await app.click("totp-setup-button");
    await page.locator("#totp-qr").waitFor();
    const totp = totpCodes(clock, (await page.locator("#totp-secret").innerText()).trim());
    await app.submit("totp-confirm-form", { code: totp() });
    expect(await app.notice()).toBe("Two-step verification is on.");
    const codes = page.locator("#backup-code-list li");
    await expect.poll(() => codes.count()).toBe(10);
    const first = await codes.allInnerTexts();
    await app.click("backup-codes-done");
    await page.locator("#totp-manage:not([hidden])").waitFor();

    await app.submit("backup-regenerate-form", { totpCode: totp() });
    expect(await app.notice()).toBe("New backup codes were made; the old ones no longer work.");
    await expect.poll(() => codes.count()).toBe(10);
    const second = await codes.allInnerTexts();
    expect(second.filter((c) => first.includes(c))).toEqual([]);
    await app.click("backup-codes-done");
    await shot(page, "backup-codes-regenerated");

    await app.submit("totp-disable-form", { password: NEW_PASSWORD, code: first[0]! });
    expect(await app.error()).toBe(ERROR_REASONS.MFA_CODE_INVALID.browser);
    await app.submit("totp-disable-form", { password: NEW_PASSWORD, code: second[0]! });
    expect(await app.notice()).toBe("The authenticator app no longer confirms your sign-ins.");
    await expect.poll(() => page.locator("#mfa-status").innerText()).toMatch(/^Off\./);
    expect(await page.locator("#totp-manage").isHidden()).toBe(true);
    await app.click("activity-reload");
    await expect.poll(() => app.activityTypes()).toEqual(expect.arrayContaining(["BACKUP_CODES_REGENERATED", "MFA_DISABLED", "PASSWORD_CHANGED"]));
    await shot(page, "totp-off");
  });

  it("resets a forgotten password with a code sent by email", async () => {
    await app.click("logout-button");
    await app.signedOut();
    const before = await app.outboxCount(newEmail);
    await app.submit("reset-request-form", { channel: "email", destination: newEmail });
    expect(await app.notice()).toMatch(/^Reset code sent/);
    const code = await app.nextOutboxCode(newEmail, before);
    await app.submit("reset-form", { code, newPassword: RESET_PASSWORD });
    expect(await app.notice()).toBe("Your password was reset. Sign in with the new one.");
    expect(await page.locator("#login-form [name=identifier]").inputValue()).toBe(newEmail);
    await app.submit("login-form", { identifier: newEmail, password: NEW_PASSWORD });
    expect(await app.error()).toBe("The username, email, phone number or password is not correct.");
    await app.submit("login-form", { identifier: newEmail, password: RESET_PASSWORD });
    await app.signedIn();
    await shot(page, "password-reset");
  });

  it("deletes the account; its right password then hears that it was deleted", async () => {
    await app.submit("delete-account-form", { password: RESET_PASSWORD });
    expect(await app.notice()).toBe("Tick the box to confirm that you want to delete this account.");
    await page.locator("#delete-account-form [name=confirm]").check();
    await app.submit("delete-account-form", { password: RESET_PASSWORD });
    await app.signedOut();
    expect(await app.notice()).toBe("Your account was deleted and you are signed out.");
    await app.submit("login-form", { identifier: newEmail, password: RESET_PASSWORD });
    expect(await app.error()).toBe(ERROR_REASONS.ACCOUNT_DELETED.browser);
    await shot(page, "deleted");
  });

  it(`made every call over ${transport}`, () => {
    expect(pageErrors).toEqual([]);
    expect(new Set(traffic.rpcs.map(protocolOf))).toEqual(new Set([transport]));
    const methods = new Set(traffic.rpcs.map((r) => r.method));
    for (const m of [
      "AuthService/UpdateProfile",
      "AuthService/ChangePhone",
      "AuthService/ChangeEmail",
      "AuthService/ConfirmContactChange",
      "AuthService/Reauthenticate",
      "AuthService/ChangePassword",
      "AuthService/RequestPasswordReset",
      "AuthService/ResetPassword",
      "AuthService/DeleteAccount",
      "MfaService/EnableCodeFactor",
      "MfaService/DisableCodeFactor",
      "MfaService/SendMfaCode",
      "MfaService/RegenerateBackupCodes",
      "MfaService/DisableTotp",
    ]) {
      expect(methods).toContain(m);
    }
  });
});
