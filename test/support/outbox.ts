// One-time codes as the service "sent" them: the harness hands the service a test-owned outbox
// (createApp's `outbox`), and the console provider puts every message in it as well as in the
// log. Tests read codes here; only the tests about the console provider's log line read the log.
import type { DevOutbox, OutboxEntry } from "../../src/delivery/dev-outbox.js";
import type { OtpMessage } from "../../src/domain/otp/messages.js";

export interface TestOutbox extends DevOutbox {
  /** Every message sent to `to` (all destinations when omitted), oldest first. */
  messages(to?: string): OtpMessage[];
  /** The code in the latest message sent to `to`; throws when none was sent. */
  lastCode(to: string): string;
  /** How many messages were sent so far. */
  readonly count: number;
}

export function createTestOutbox(): TestOutbox {
  const entries: OutboxEntry[] = [];
  return {
    add(message) {
      const { channel, to, subject, text } = message;
      entries.push({ id: entries.length + 1, time: new Date().toISOString(), channel, to, subject, text });
    },
    list: () => [...entries].reverse(),
    messages: (to) => entries.filter((m) => to === undefined || m.to === to),
    lastCode(to) {
      const last = entries.findLast((m) => m.to === to);
      if (!last) throw new Error(`no code was sent to ${to}`);
      return codeIn(last.text);
    },
    get count() {
      return entries.length;
    },
  };
}

export function codeIn(text: string): string {
  const match = /\b(\d{6})\b/.exec(text);
  if (!match) throw new Error(`no code in "${text}"`);
  return match[1]!;
}

/** A code that is certainly not `code`. */
export function wrongCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, "0");
}

export interface ConsoleMessage {
  readonly channel: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/**
 * Every message the console provider logged to `to` (all destinations when omitted), oldest
 * first. Only for tests of the log line itself, or of a service in another process.
 */
export function consoleMessages(lines: readonly string[], to?: string): ConsoleMessage[] {
  return lines
    .filter((line) => line.includes('"otpDelivery":"console"'))
    .map((line) => JSON.parse(line) as ConsoleMessage)
    .filter((m) => to === undefined || m.to === to);
}

/** The code of the latest message the console provider logged to `to` (see consoleMessages). */
export function lastLoggedCode(lines: readonly string[], to: string): string {
  const last = consoleMessages(lines, to).at(-1);
  if (!last) throw new Error(`no code was logged for ${to}`);
  return codeIn(last.text);
}
