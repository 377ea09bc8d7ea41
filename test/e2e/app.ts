// The browser app as a person uses it: fill the forms, press the buttons, read what it shows.
import { generateSync } from "otplib";
import type { Page } from "playwright-core";
import { expect } from "vitest";

export type Transport = "grpc-web" | "connect";

export class AppPage {
  constructor(readonly page: Page) {}

  async open(baseUrl: string, query = ""): Promise<void> {
    await this.page.goto(`${baseUrl}/${query}`);
    await this.page.locator("body[data-ready=true]").waitFor();
  }

  async reload(): Promise<void> {
    await this.page.reload();
    await this.page.locator("body[data-ready=true]").waitFor();
  }

  async chooseTransport(name: Transport): Promise<void> {
    await this.page.locator(`input[name=transport][value=${name}]`).check();
    await expect.poll(() => this.status()).toContain(name === "connect" ? "Connect" : "gRPC-web");
  }

  status(): Promise<string> {
    return this.page.locator("#status").innerText();
  }

  /** The plain sentence the page shows after a failed action. */
  async error(): Promise<string> {
    const el = this.page.locator("#error:not([hidden])");
    await el.waitFor();
    return el.innerText();
  }

  async notice(): Promise<string> {
    const el = this.page.locator("#notice:not([hidden])");
    await el.waitFor();
    return el.innerText();
  }

  async fill(form: string, fields: Record<string, string>): Promise<void> {
    for (const [name, value] of Object.entries(fields)) {
      const input = this.page.locator(`#${form} [name=${name}]`);
      if ((await input.evaluate((el) => el.tagName)) === "SELECT") await input.selectOption(value);
      else await input.fill(value);
    }
  }

  async submit(form: string, fields: Record<string, string>): Promise<void> {
    await this.fill(form, fields);
    await this.page.locator(`#${form} button[type=submit]`).click();
  }

  async click(id: string): Promise<void> {
    await this.page.locator(`#${id}`).click();
  }

  async signedIn(): Promise<void> {
    await this.page.locator("#signed-in:not([hidden]) #whoami dd").first().waitFor();
    await expect.poll(() => this.status()).toMatch(/^Signed in as /);
  }

  async signedOut(): Promise<void> {
    await this.page.locator("#signed-out:not([hidden])").waitFor();
    await expect.poll(() => this.status()).toMatch(/^Signed out/);
  }

  async challenged(): Promise<void> {
    await this.page.locator("#mfa-challenge:not([hidden])").waitFor();
  }

  /** Name -> text of the Who am I list. */
  async whoAmI(): Promise<Record<string, string>> {
    const names = await this.page.locator("#whoami dt").allInnerTexts();
    const values = await this.page.locator("#whoami dd").allInnerTexts();
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? ""]));
  }

  /** The access token's claims as the page shows them (`name: json` lines). */
  async claims(): Promise<Record<string, unknown>> {
    const text = await this.page.locator("#claims").innerText();
    const section = text.split("claims\n")[1] ?? "";
    return Object.fromEntries(
      section
        .split("\n")
        .filter((l) => l.includes(": "))
        .map((l) => {
          const [name, rest] = [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)];
          return [name, JSON.parse(rest.replace(/\s+\(.*\)$/, "")) as unknown];
        }),
    );
  }

  /** The code in the newest development-outbox message to `to`, as the panel shows it. */
  async outboxCode(to: string): Promise<string> {
    const item = this.page.locator(`#outbox-list li[data-to="${to}"]`).first();
    await item.waitFor({ timeout: 10_000 });
    const text = await item.innerText();
    const match = /\b(\d{6})\b/.exec(text);
    if (!match) throw new Error(`no code in the outbox message "${text}"`);
    return match[1]!;
  }

  /** How many development-outbox messages to `to` the panel shows. */
  outboxCount(to: string): Promise<number> {
    return this.page.locator(`#outbox-list li[data-to="${to}"]`).count();
  }

  /** The code of the next message to `to`: waits until the panel shows more than `before` of them. */
  async nextOutboxCode(to: string, before: number): Promise<string> {
    await expect.poll(() => this.outboxCount(to), { timeout: 10_000 }).toBeGreaterThan(before);
    return this.outboxCode(to);
  }

  sessionRows() {
    return this.page.locator("#session-rows tr");
  }

  async activityTypes(): Promise<string[]> {
    return this.page.locator("#activity-list li").evaluateAll((items) => items.map((li) => (li as HTMLElement).dataset.type ?? ""));
  }
}

/** The service's clock in the e2e suites: the wall clock plus an offset, moved forward to age a sign-in. */
export interface OffsetClock {
  offsetMs: number;
  now(): Date;
}

export function offsetClock(): OffsetClock {
  return {
    offsetMs: 0,
    now(): Date {
      return new Date(Date.now() + this.offsetMs);
    },
  };
}

/** TOTP codes by `clock`, each step used once (the service refuses a replayed step). */
export function totpCodes(clock: OffsetClock, secret: string): () => string {
  let lastStep = 0;
  return () => {
    const step = Math.max(Math.floor(clock.now().getTime() / 30_000), lastStep + 1);
    lastStep = step;
    return generateSync({ secret, epoch: step * 30 });
  };
}
