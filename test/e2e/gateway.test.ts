// What the browser itself enforces with the gateway's help: a page from another origin cannot
// call it (CORS allowlist), the app page runs under its Content-Security-Policy without
// violations, and in production mode the development outbox does not exist.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../support/ports.js";
import { TEST_KEK } from "../support/service.js";
import { prepared, setupService } from "../support/setup.js";
import { AppPage } from "./app.js";
import { launchChromium, screenshots } from "./browser.js";

/** A plain page on its own origin (another port), standing in for someone else's site. */
async function otherSite(title: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><title>${title}</title><h1>${title}</h1><p id="result">not tried yet</p>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const chromium = prepared(launchChromium, (browser) => browser.close());

describe("CORS: only configured origins may call the gateway from a browser", () => {
  const shot = screenshots("cors");
  const sites = prepared(
    async () => {
      const [allowed, refused] = await Promise.all([otherSite("An allowed site"), otherSite("Some other site")]);
      return { allowed, refused };
    },
    ({ allowed, refused }) => Promise.all([allowed.close(), refused.close()]).then(() => undefined),
  );
  const t = setupService(() => ({ env: { CORS_ORIGINS: sites().allowed.origin } }));

  /** From a page on `origin`, a credentialed Connect call to the gateway; what the page saw. */
  async function callFrom(origin: string, step: string): Promise<string> {
    const context = await chromium().newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    const outcome = await page.evaluate(async (gateway) => {
      let text: string;
      try {
        const res = await fetch(`${gateway}/identity.v1.TokenService/GetJwks`, {
          method: "POST",
          credentials: "include",
          headers: { "content-type": "application/json", "connect-protocol-version": "1" },
          body: "{}",
        });
        const body = (await res.json()) as { keys?: unknown[] };
        text = `answered ${res.status} with ${body.keys?.length ?? 0} key(s)`;
      } catch (err) {
        text = `refused: ${(err as Error).name}: ${(err as Error).message}`;
      }
      document.getElementById("result")!.textContent = text;
      return text;
    }, t.httpUrl);
    await shot(page, step);
    await context.close();
    return outcome;
  }

  it("a page from a configured origin gets an answer", async () => {
    expect(await callFrom(sites().allowed.origin, "allowed-origin")).toBe("answered 200 with 1 key(s)");
  });

  it("a page from any other origin is refused by the browser", async () => {
    expect(await callFrom(sites().refused.origin, "refused-origin")).toBe("refused: TypeError: Failed to fetch");
  });
});

describe("the app in production mode", () => {
  const shot = screenshots("production");
  // Production requires PUBLIC_URL, the origin the page is served from: a port known beforehand.
  const t = setupService(async () => {
    const port = await freePort();
    return { env: { NODE_ENV: "production", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), PUBLIC_URL: `http://127.0.0.1:${port}`, HTTP_PORT: String(port) } };
  });

  it("has no development outbox, and the page runs under its CSP without violations", async () => {
    const context = await chromium().newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" && !/status of 404/.test(message.text())) problems.push(message.text());
    });
    page.on("pageerror", (err) => problems.push(err.message));
    const app = new AppPage(page);
    await app.open(t.httpUrl);
    await app.signedOut();
    expect((await fetch(`${t.httpUrl}/dev/outbox`)).status).toBe(404);
    expect(await page.locator("#outbox").isHidden()).toBe(true);
    await app.submit("signup-form", { email: "production-page@example.com", password: "a long enough passphrase" });
    await app.signedIn();
    expect(problems).toEqual([]);
    await shot(page, "signed-in-no-outbox");
    await context.close();
  });
});
