// The app's Administration section in real Chromium, over gRPC-web and over Connect: an
// administrator (role granted in the database, TOTP enrolled) signs in with the second factor,
// searches (and pages), opens an account, changes its role (ending its sessions), disables and enables it,
// ends its sessions and reads its activity; the account then sees those changes in its own
// activity as made by an administrator. A person who may not administer never sees the section,
// and AdminService refuses the same page's direct calls. When the administrator's second factor
// is older than ADMIN_MAX_AUTH_AGE_SECONDS (the service's clock moved forward), the section asks
// for it again, and signing in again with it lets the administrator continue.
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListUsersRequestSchema, SetUserRoleRequestSchema } from "../../gen/identity/v1/admin_service_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { ERROR_REASONS } from "../../src/error-reasons.js";
import { bearer, PASSWORD, uniqueEmail } from "../support/accounts.js";
import { prepared, setupService } from "../support/setup.js";
import { AppPage, offsetClock, totpCodes, type Transport } from "./app.js";
import { launchChromium, protocolOf, recordTraffic, screenshots, type Chromium, type Traffic } from "./browser.js";

const ADMIN_MAX_AUTH_AGE_SECONDS = 60;

/** The service's clock, moved forward to age a sign-in. */
const clock = offsetClock();

const chromium = prepared(launchChromium, (browser: Chromium) => browser.close());
// Access tokens outlive the moved clock (300 s by default), so only the sign-in's age is stale.
const t = setupService({ clock, env: { ADMIN_MAX_AUTH_AGE_SECONDS: String(ADMIN_MAX_AUTH_AGE_SECONDS) } });

interface Person {
  readonly email: string;
  readonly userId: string;
}

/** An account signed up from a backend (Connect over HTTP/1.1), with one live session. */
async function signUp(tag: string): Promise<Person & { refreshToken: string }> {
  const auth = createClient(AuthService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }));
  const email = uniqueEmail(tag);
  const res = await auth.signUp({ email, password: PASSWORD });
  return { email, userId: res.user!.id, refreshToken: res.tokens!.refreshToken };
}

/** An administrator: role `admin` granted in the database, TOTP enrolled. */
async function signUpAdmin(tag: string): Promise<Person & { totp: () => string }> {
  const transport = createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });
  const email = uniqueEmail(tag);
  const res = await createClient(AuthService, transport).signUp({ email, password: PASSWORD });
  const mfa = createClient(MfaService, transport);
  const setup = await mfa.setupTotp({}, bearer(res.tokens!.accessToken));
  const totp = totpCodes(clock, setup.secret);
  await mfa.confirmTotp({ code: totp() }, bearer(res.tokens!.accessToken));
  await t.db.query("UPDATE users SET role = 'admin' WHERE id = $1", [res.user!.id]);
  return { email, userId: res.user!.id, totp };
}

async function storedUser(userId: string): Promise<{ role: string; status: string }> {
  const rows = (await t.db.query("SELECT role, status FROM users WHERE id = $1", [userId])) as Array<{ role: string; status: string }>;
  return rows[0]!;
}

function refreshWith(refreshToken: string) {
  return createClient(TokenService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" })).refreshToken({ refreshToken });
}

function loginFromBackend(email: string) {
  return createClient(AuthService, createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" })).login({ identifier: email, password: PASSWORD });
}

describe.each<Transport>(["grpc-web", "connect"])("the Administration section over %s", (transport) => {
  const shot = screenshots(`admin-${transport}`);
  let context: BrowserContext;
  let page: Page;
  let app: AppPage;
  let traffic: Traffic;
  const pageErrors: string[] = [];
  /** The bearer token of the page's latest RPC (the app keeps it in memory only). */
  let lastBearer = "";
  const tag = `adm-${transport}-${Date.now() % 1e6}`;
  let admin: Person & { totp: () => string };
  let target: Person & { refreshToken: string };
  let other: Person;
  let plain: Person;

  const section = () => page.locator("#admin");
  const rows = () => page.locator("#admin-user-rows tr");
  const fact = async (name: string) => page.locator("#admin-user-facts dt", { hasText: new RegExp(`^${name}$`) }).locator("xpath=following-sibling::dd[1]").innerText();

  beforeAll(async () => {
    [admin, target, other, plain] = await Promise.all([signUpAdmin(`${tag}-admin`), signUp(`${tag}-target`), signUp(`${tag}-other`), signUp(`plain-${transport}`)]);
    context = await chromium().newContext();
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("request", (request) => {
      const authorization = request.headers().authorization;
      if (authorization?.startsWith("Bearer ")) lastBearer = authorization.slice("Bearer ".length);
    });
    traffic = recordTraffic(page);
    app = new AppPage(page);
    await app.open(t.httpUrl, `?transport=${transport}`);
  });
  afterAll(async () => {
    await context?.close();
  });

  /** Signs in with the password and, when asked, the administrator's TOTP code. */
  async function signIn(person: Person, totp?: () => string): Promise<void> {
    await app.submit("login-form", { identifier: person.email, password: PASSWORD });
    if (totp) {
      await app.challenged();
      await app.submit("mfa-form", { code: totp() });
    }
    await app.signedIn();
  }

  /** Waits for the section's probe (ListUsers) that followed the latest sign-in. */
  async function probed(since: number): Promise<void> {
    await expect.poll(() => traffic.since(since).some((r) => r.method === "AdminService/ListUsers")).toBe(true);
  }

  it("never shows the section to a person who may not administer, and refuses the page's direct calls", async () => {
    const mark = traffic.rpcs.length;
    await signIn(plain);
    await probed(mark);
    expect(await section().isHidden()).toBe(true);
    await shot(page, "not-an-admin");

    // The same page calls AdminService itself, with its own access token and its protocol:
    // refused (PERMISSION_DENIED), and nothing changes.
    const before = await t.fingerprint(["audit_events"]);
    const calls = [
      { method: "ListUsers", bytes: [...toBinary(ListUsersRequestSchema, create(ListUsersRequestSchema, {}))], json: {} },
      { method: "SetUserRole", bytes: [...toBinary(SetUserRoleRequestSchema, create(SetUserRoleRequestSchema, { userId: plain.userId, role: "admin" }))], json: { userId: plain.userId, role: "admin" } },
    ];
    const codes = await page.evaluate(
      async ({ token, calls, grpcWeb }) => {
        const codes: string[] = [];
        for (const { method, bytes, json } of calls) {
          const url = `/identity.v1.AdminService/${method}`;
          if (grpcWeb) {
            const frame = new Uint8Array(5 + bytes.length);
            new DataView(frame.buffer).setUint32(1, bytes.length);
            frame.set(bytes, 5);
            const res = await fetch(url, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", authorization: `Bearer ${token}` }, body: frame });
            // The status is in the headers (trailers-only) or in the trailer frame of the body.
            const body = new TextDecoder().decode(await res.arrayBuffer());
            codes.push(`${res.status} grpc-status ${res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(body)?.[1]}`);
          } else {
            const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "connect-protocol-version": "1", authorization: `Bearer ${token}` }, body: JSON.stringify(json) });
            codes.push(`${res.status} ${((await res.json()) as { code?: string }).code}`);
          }
        }
        return codes;
      },
      { token: lastBearer, calls, grpcWeb: transport === "grpc-web" },
    );
    expect(codes).toEqual(transport === "grpc-web" ? ["200 grpc-status 7", "200 grpc-status 7"] : ["403 permission_denied", "403 permission_denied"]);
    expect(await t.fingerprint(["audit_events"])).toEqual(before);
    expect((await storedUser(plain.userId)).role).toBe("user");

    await app.click("logout-button");
    await app.signedOut();
  });

  it("shows the section to an administrator signed in with the second factor, and searches", async () => {
    const mark = traffic.rpcs.length;
    await signIn(admin, admin.totp);
    await probed(mark);
    await section().waitFor();
    expect(await page.locator("#admin-step-up").isHidden()).toBe(true);
    await app.submit("admin-search-form", { email: tag });
    await expect.poll(() => rows().count()).toBe(3);
    const listed = await rows().evaluateAll((trs) => trs.map((tr) => tr.querySelector("td")?.textContent ?? ""));
    expect(listed.sort()).toEqual([admin.email, target.email, other.email].sort());
    expect(await page.locator("#admin-results").innerText()).toBe("3 accounts.");

    await app.submit("admin-search-form", { email: tag, role: "admin" });
    await expect.poll(() => rows().count()).toBe(1);
    expect(await rows().first().innerText()).toContain(admin.email);
    await app.submit("admin-search-form", { email: `${tag}-nobody`, role: "" });
    await expect.poll(() => page.locator("#admin-results").innerText()).toBe("No account matches.");
    await shot(page, "searched");
  });

  it("pages through a result longer than a page", async () => {
    // 22 accounts made in the database at once (the same creation time: the order falls to the id).
    const prefix = `many-${tag}`;
    const emails = Array.from({ length: 22 }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}@example.com`);
    await t.db.query("INSERT INTO users (email) SELECT unnest($1::text[])", [emails]);
    await app.submit("admin-search-form", { email: prefix, role: "" });
    await expect.poll(() => rows().count()).toBe(20);
    expect(await page.locator("#admin-results").innerText()).toBe("20 accounts so far.");
    await app.click("admin-next-page");
    await expect.poll(() => rows().count()).toBe(22);
    expect(await page.locator("#admin-results").innerText()).toBe("22 accounts.");
    expect(await page.locator("#admin-next-page").isHidden()).toBe(true);
    const listed = await rows().evaluateAll((trs) => trs.map((tr) => tr.querySelector("td")?.textContent ?? ""));
    expect(listed.sort()).toEqual(emails);
  });

  it("opens an account and changes its role, ending its sessions", async () => {
    await app.submit("admin-search-form", { email: `${tag}-target` });
    await expect.poll(() => rows().count()).toBe(1);
    await rows().first().getByRole("button", { name: "Open" }).click();
    await page.locator("#admin-user:not([hidden])").waitFor();
    expect(await fact("Email")).toBe(`${target.email} (not verified)`);
    expect(await fact("Role")).toBe("user");
    expect(await fact("Status")).toBe("active");
    expect(await fact("Active sessions")).toBe("1");
    await shot(page, "opened");

    await app.fill("admin-role-form", { role: "admin" });
    await page.locator("#admin-role-form input[name=revokeSessions]").check();
    await page.locator("#admin-role-form button[type=submit]").click();
    expect(await app.notice()).toBe("The role is now admin, and its sessions were ended.");
    await expect.poll(() => fact("Role")).toBe("admin");
    expect(await fact("Active sessions")).toBe("0");
    expect((await storedUser(target.userId)).role).toBe("admin");
    await expect(refreshWith(target.refreshToken)).rejects.toThrow();

    await app.fill("admin-role-form", { role: "user" });
    await page.locator("#admin-role-form button[type=submit]").click();
    expect(await app.notice()).toBe("The role is now user.");
    expect((await storedUser(target.userId)).role).toBe("user");
    await shot(page, "role-changed");
  });

  it("disables the account (it cannot sign in) and enables it again", async () => {
    await app.submit("admin-disable-form", { reason: "e2e: suspicious sign-ins" });
    expect(await app.notice()).toBe("The account is disabled: it cannot sign in, and its sessions were ended.");
    await expect.poll(() => fact("Status")).toBe("disabled");
    expect(await page.locator("#admin-enable").isVisible()).toBe(true);
    expect(await page.locator("#admin-disable-form").isHidden()).toBe(true);
    expect((await storedUser(target.userId)).status).toBe("disabled");
    await expect(loginFromBackend(target.email)).rejects.toThrow();
    await expect.poll(() => rows().first().locator("td.status").innerText()).toBe("disabled");
    await shot(page, "disabled");

    await app.click("admin-enable");
    expect(await app.notice()).toBe("The account is enabled: it may sign in again.");
    await expect.poll(() => fact("Status")).toBe("active");
    expect((await storedUser(target.userId)).status).toBe("active");
    const login = await loginFromBackend(target.email);
    expect(login.result.case).toBe("tokens");
    if (login.result.case === "tokens") target = { ...target, refreshToken: login.result.value.refreshToken };
  });

  it("ends the account's sessions", async () => {
    await app.click("admin-revoke-sessions");
    expect(await app.notice()).toBe("1 session was ended.");
    await expect.poll(() => fact("Active sessions")).toBe("0");
    await expect(refreshWith(target.refreshToken)).rejects.toThrow();
  });

  it("reads the account's activity", async () => {
    const types = () => page.locator("#admin-activity li").evaluateAll((items) => items.map((li) => (li as HTMLElement).dataset.type ?? ""));
    await expect.poll(types).toEqual(expect.arrayContaining(["SIGN_UP", "ROLE_CHANGED", "ACCOUNT_DISABLED", "ACCOUNT_ENABLED", "SESSIONS_REVOKED_BY_ADMIN"]));
    const text = await page.locator("#admin-activity").innerText();
    expect(text).toContain("Role changed — changed by an administrator");
    expect(text).toContain("role: user → admin");
    expect(text).toContain("status: active → disabled");
    expect(text).toContain(`by user:${admin.userId}`);
    expect(text).toContain("e2e: suspicious sign-ins");
    await shot(page, "activity");
  });

  it("asks for the second factor again once it is older than ADMIN_MAX_AUTH_AGE, and continues in place after Reauthenticate", async () => {
    clock.offsetMs += (ADMIN_MAX_AUTH_AGE_SECONDS + 5) * 1000;
    await app.submit("admin-search-form", { email: tag });
    expect(await app.error()).toBe(ERROR_REASONS.STEP_UP_REQUIRED.browser);
    await page.locator("#admin-step-up:not([hidden])").waitFor();
    // A wrong code is refused and the prompt stays; the right one continues the search.
    await app.submit("admin-reauth-form", { password: PASSWORD, method: "totp", code: "000000" === admin.totp() ? "111111" : "000000" });
    expect(await app.error()).toBe(ERROR_REASONS.MFA_CODE_INVALID.browser);
    expect(await page.locator("#admin-step-up").isHidden()).toBe(false);
    const mark = traffic.rpcs.length;
    await app.submit("admin-reauth-form", { password: PASSWORD, method: "totp", code: admin.totp() });
    expect(await app.notice()).toBe("Verified: you may continue with administration.");
    await expect.poll(() => rows().count()).toBe(3);
    expect(await page.locator("#admin-step-up").isHidden()).toBe(true);
    expect(traffic.since(mark).map((r) => r.method)).toEqual(expect.arrayContaining(["AuthService/Reauthenticate", "AdminService/ListUsers"]));
    expect(await app.status()).toMatch(/^Signed in as /);
    await shot(page, "stepped-up-in-place");
  });

  it("asks for the second factor again once it is older than ADMIN_MAX_AUTH_AGE, and continues after signing in again with it", async () => {
    clock.offsetMs += (ADMIN_MAX_AUTH_AGE_SECONDS + 5) * 1000;
    await app.submit("admin-search-form", { email: tag });
    expect(await app.error()).toBe(ERROR_REASONS.STEP_UP_REQUIRED.browser);
    await page.locator("#admin-step-up:not([hidden])").waitFor();
    await shot(page, "step-up-prompt");

    await app.click("admin-step-up-button");
    await app.signedOut();
    expect(await page.locator("#login-form [name=identifier]").inputValue()).toBe(admin.email);
    expect(await section().isHidden()).toBe(true);
    await app.submit("login-form", { identifier: admin.email, password: PASSWORD });
    await app.challenged();
    await app.submit("mfa-form", { code: admin.totp() });
    await app.signedIn();
    await section().waitFor();
    await app.submit("admin-search-form", { email: tag });
    await expect.poll(() => rows().count()).toBe(3);
    expect(await page.locator("#admin-step-up").isHidden()).toBe(true);
    await shot(page, "stepped-up");
    await app.click("logout-button");
    await app.signedOut();
  });

  it("shows the account, in its own activity, what an administrator changed", async () => {
    const mark = traffic.rpcs.length;
    await signIn(target);
    await probed(mark);
    await app.click("activity-reload");
    const item = page.locator("#activity-list li[data-type=ROLE_CHANGED]").first();
    await item.waitFor();
    expect(await item.innerText()).toContain("changed by an administrator");
    expect(await page.locator("#activity-list li[data-type=SIGN_UP]").innerText()).not.toContain("administrator");
    expect(await section().isHidden()).toBe(true);
    await shot(page, "target-activity");
    await app.click("logout-button");
    await app.signedOut();
  });

  it(`made every call over ${transport}`, () => {
    expect(pageErrors).toEqual([]);
    expect(new Set(traffic.rpcs.map(protocolOf))).toEqual(new Set([transport]));
    const methods = new Set(traffic.rpcs.map((r) => r.method));
    for (const m of ["ListUsers", "GetUser", "SetUserRole", "DisableUser", "EnableUser", "RevokeUserSessions", "ListUserActivity"]) {
      expect(methods).toContain(`AdminService/${m}`);
    }
  });
});
