// Real delivery servers that record what the service sent them: an SMTP server for email and an
// HTTP server standing in for an SMS gateway's webhook.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { codeIn } from "./outbox.js";

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
  /** The W3C trace context the service passed on (tracing on, during a call). */
  readonly traceparent: string | undefined;
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
          traceparent: typeof req.headers.traceparent === "string" ? req.headers.traceparent : undefined,
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
