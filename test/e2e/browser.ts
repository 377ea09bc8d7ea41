// Support of the browser suites: Debian's Chromium through playwright-core, a screenshot per
// step, and a recorder of the app's RPC traffic that proves which protocol it spoke and that no
// refresh token ever reached page script.
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { expect } from "vitest";

export const CHROMIUM = "/usr/bin/chromium";
export const SCREENSHOTS = path.resolve("test-results/e2e");
export const COOKIE = "identity-refresh";

export interface Chromium {
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Headless Chromium on a fresh user-data dir: playwright's launch() starts it with
 * `--user-data-dir=<new temporary directory>` (playwright_chromiumdev_profile-*), deleted on
 * close, and refuses the flag from callers; each context is isolated like a separate profile.
 */
export async function launchChromium(): Promise<Chromium> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    newContext: () => browser.newContext({ viewport: { width: 1280, height: 900 } }),
    close: () => browser.close(),
  };
}

/** Numbered full-page screenshots under test-results/e2e/<folder>/. */
export function screenshots(folder: string): (page: Page, step: string) => Promise<void> {
  const dir = path.join(SCREENSHOTS, folder);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, step) => {
    n += 1;
    await page.screenshot({ path: path.join(dir, `${String(n).padStart(2, "0")}-${step}.png`), fullPage: true });
  };
}

export interface RpcExchange {
  readonly method: string;
  readonly contentType: string;
  readonly status: number;
  readonly body: Buffer;
}

/** Every RPC the page made (path /identity.v1.X/Y), and every refresh token the gateway set. */
export interface Traffic {
  readonly rpcs: RpcExchange[];
  readonly refreshTokens: Set<string>;
  /** RPC method names (e.g. `AuthService/Login`) since `mark`. */
  since(mark: number): RpcExchange[];
}

export function recordTraffic(page: Page): Traffic {
  const rpcs: RpcExchange[] = [];
  const refreshTokens = new Set<string>();
  page.on("response", async (response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith("/identity.v1.")) return;
    const request = response.request();
    if (request.method() !== "POST") return;
    const headers = await response.allHeaders();
    for (const cookie of (headers["set-cookie"] ?? "").split("\n")) {
      const match = new RegExp(`^${COOKIE}=([^;]+)`).exec(cookie.trim());
      if (match) refreshTokens.add(match[1]!);
    }
    const body = await response.body().catch(() => Buffer.alloc(0));
    rpcs.push({
      method: url.pathname.replace("/identity.v1.", ""),
      contentType: (await request.headerValue("content-type")) ?? "",
      status: response.status(),
      body,
    });
  });
  return { rpcs, refreshTokens, since: (mark) => rpcs.slice(mark) };
}

/** The refresh-token cookie as the browser holds it. */
export async function refreshCookie(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === COOKIE);
}

/**
 * The refresh token exists only as an HttpOnly, Secure, SameSite=Strict cookie: not in
 * document.cookie, Web Storage, the DOM, or any RPC response body the page could read.
 */
export async function expectRefreshTokenHidden(page: Page, context: BrowserContext, traffic: Traffic): Promise<string> {
  const cookie = await refreshCookie(context);
  expect(cookie, "refresh cookie").toBeDefined();
  expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
  expect(cookie!.value).toMatch(/^[\w-]{43}$/);
  const visible = await page.evaluate(() => ({
    cookie: document.cookie,
    local: Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`),
    session: Object.keys(sessionStorage).map((k) => `${k}=${sessionStorage.getItem(k)}`),
    html: document.documentElement.outerHTML,
    url: location.href,
  }));
  expect(visible.cookie).toBe("");
  expect(visible.local).toEqual([]);
  expect(visible.session).toEqual([]);
  const tokens = [...traffic.refreshTokens, cookie!.value];
  for (const token of tokens) {
    expect(visible.html).not.toContain(token);
    expect(visible.url).not.toContain(token);
    for (const rpc of traffic.rpcs) expect(rpc.body.includes(token), `${rpc.method} body carries a refresh token`).toBe(false);
  }
  return cookie!.value;
}

/** Protocol the page used, read from its requests' content types. */
export function protocolOf(rpc: RpcExchange): "grpc-web" | "connect" {
  if (rpc.contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (rpc.contentType === "application/json" || rpc.contentType === "application/proto") return "connect";
  throw new Error(`unexpected content type ${rpc.contentType}`);
}
