// Helpers of the one-time-code suites: codes read from the console provider's log lines, a real
// SMTP server and a real webhook server that record what they were sent, and row counts that
// prove a refused request stored nothing.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import type { DataSource } from "typeorm";
import { expect } from "vitest";
import type { Client } from "@connectrpc/connect";
import type { OtpService } from "../../gen/identity/v1/otp_service_pb.js";

export type OtpClient = Client<typeof OtpService>;

export interface ConsoleMessage {
  readonly channel: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/** Every message the console provider logged to `to` (all destinations when omitted), oldest first. */
export function consoleMessages(lines: readonly string[], to?: string): ConsoleMessage[] {
  return lines
    .filter((line) => line.includes('"otpDelivery":"console"'))
    .map((line) => JSON.parse(line) as ConsoleMessage)
    .filter((m) => to === undefined || m.to === to);
}

export function codeIn(text: string): string {
  const match = /\b(\d{6})\b/.exec(text);
  if (!match) throw new Error(`no code in "${text}"`);
  return match[1]!;
}

/** The code of the latest message the console provider logged to `to`. */
export function lastCode(lines: readonly string[], to: string): string {
  const messages = consoleMessages(lines, to);
  const last = messages[messages.length - 1];
  if (!last) throw new Error(`no code was sent to ${to}`);
  return codeIn(last.text);
}

/** A code that is certainly not `code`. */
export function wrongCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, "0");
}

export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly raw: string;
}

/** A real SMTP server on a free port (plain, no auth) that keeps what it receives. */
export interface TestSmtpServer {
  readonly url: string;
  readonly mails: ReceivedMail[];
  /** While set, every message is refused with a 451 (the provider is "down"). */
  refuse: boolean;
  close(): Promise<void>;
}

export async function startSmtpServer(): Promise<TestSmtpServer> {
  const state = { refuse: false };
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS", "AUTH"],
    authOptional: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        if (state.refuse) {
          const err = Object.assign(new Error("mailbox temporarily unavailable"), { responseCode: 451 });
          return callback(err);
        }
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return Object.assign(state, {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** The text body of a received mail (quoted-printable soft breaks undone). */
export function mailBody(mail: ReceivedMail): string {
  return mail.raw.split(/\r?\n\r?\n/).slice(1).join("\n").replace(/=\r?\n/g, "");
}

/** A header of a received mail. */
export function mailHeader(mail: ReceivedMail, name: string): string | undefined {
  const head = mail.raw.split(/\r?\n\r?\n/)[0] ?? "";
  const match = new RegExp(`^${name}:\\s*(.*)$`, "im").exec(head);
  return match?.[1]?.trim();
}

/** The code in the latest mail to `to`. */
export function lastMailedCode(server: TestSmtpServer, to: string): string {
  const mail = [...server.mails].reverse().find((m) => m.to.includes(to));
  if (!mail) throw new Error(`no mail to ${to}`);
  return codeIn(mailBody(mail));
}

export interface WebhookCall {
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly body: { to: string; text: string };
}

/** A real HTTP server standing in for an SMS gateway. */
export interface TestWebhook {
  readonly url: string;
  readonly calls: WebhookCall[];
  /** HTTP status it answers with (200 unless a test makes the gateway fail). */
  status: number;
  close(): Promise<void>;
}

export async function startWebhook(): Promise<TestWebhook> {
  const state = { status: 200 };
  const calls: WebhookCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (state.status < 300) {
        calls.push({
          authorization: req.headers.authorization,
          contentType: req.headers["content-type"],
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as WebhookCall["body"],
        });
      }
      res.writeHead(state.status, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/sms`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** The code of the latest webhook call to `to`. */
export function lastTextedCode(webhook: TestWebhook, to: string): string {
  const call = [...webhook.calls].reverse().find((c) => c.body.to === to);
  if (!call) throw new Error(`no SMS to ${to}`);
  return codeIn(call.body.text);
}

const COUNTED = [
  "users",
  "sessions",
  "audit_events",
  "otp_codes",
  "rate_limits",
  "totp_credentials",
  "backup_codes",
  "mfa_challenges",
  "refresh_tokens",
  "signing_keys",
] as const;

/** Row count and a digest of every row of each table a request may write. */
export async function tableDigests(db: DataSource): Promise<Record<string, string>> {
  // One round trip for all tables: the property tests take a digest around every call.
  const columns = COUNTED.map(
    (table) => `(SELECT count(*)::text || ' rows ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ${table} t) AS ${table}`,
  );
  const [row] = (await db.query(`SELECT ${columns.join(", ")}`)) as Array<Record<string, string>>;
  return Object.fromEntries(COUNTED.map((table) => [table, row![table]!]));
}

/**
 * Runs `action` and asserts it changed no row and sent no message. `except` names tables a
 * refusal may still write by design (a sign-up refused as IDENTIFIER_TAKEN spent its sign-up quota).
 */
export async function expectNothingStored<T>(
  db: DataSource,
  logLines: readonly string[],
  action: () => Promise<T>,
  options: { except?: readonly (typeof COUNTED)[number][] } = {},
): Promise<T> {
  const without = (digests: Record<string, string>) => Object.fromEntries(Object.entries(digests).filter(([table]) => !options.except?.includes(table as never)));
  const before = without(await tableDigests(db));
  const messages = consoleMessages(logLines).length;
  const result = await action();
  expect(without(await tableDigests(db)), "rows written").toEqual(before);
  expect(consoleMessages(logLines).length, "messages sent").toBe(messages);
  return result;
}

/** The rate-limit hits recorded under keys starting with `prefix`. */
export async function limitHits(db: DataSource, prefix: string): Promise<number> {
  const [row] = (await db.query(`SELECT coalesce(sum(cardinality(hits)), 0)::int AS n FROM rate_limits WHERE key LIKE $1`, [`${prefix}%`])) as Array<{
    n: number;
  }>;
  return row!.n;
}
