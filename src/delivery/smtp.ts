// Email delivery through an SMTP server (nodemailer), one connection per message.
import { createTransport } from "nodemailer";
import type { OtpSender } from "../domain/otp/messages.js";

export interface SmtpSettings {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://...:465`. */
  readonly url: string;
  /** The From header, e.g. `Identity <no-reply@example.com>`. */
  readonly from: string;
  readonly timeoutMs: number;
}

export function createSmtpSender(settings: SmtpSettings): OtpSender {
  const transport = createTransport(
    {
      url: settings.url,
      connectionTimeout: settings.timeoutMs,
      greetingTimeout: settings.timeoutMs,
      socketTimeout: settings.timeoutMs,
    },
    { from: settings.from },
  );
  return {
    name: "smtp",
    async send(message) {
      await transport.sendMail({ to: message.to, subject: message.subject, text: message.text });
    },
  };
}
