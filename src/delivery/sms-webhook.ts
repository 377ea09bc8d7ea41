// SMS delivery through an HTTP webhook: POST {"to": "+14155550123", "text": "..."} as JSON,
// with `authorization: Bearer <secret>` when a secret is configured, and the call's W3C
// `traceparent` when tracing is on. Any 2xx is success.
import type { OtpSender } from "../domain/otp/messages.js";
import { injectTraceContext } from "../tracing.js";

export interface SmsWebhookSettings {
  readonly url: string;
  readonly secret: string | undefined;
  readonly timeoutMs: number;
}

export function createSmsWebhookSender(settings: SmsWebhookSettings): OtpSender {
  return {
    name: "sms-webhook",
    async send(message) {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (settings.secret) headers.authorization = `Bearer ${settings.secret}`;
      injectTraceContext(headers);
      const response = await fetch(settings.url, {
        method: "POST",
        headers,
        body: JSON.stringify({ to: message.to, text: message.text }),
        signal: AbortSignal.timeout(settings.timeoutMs),
        // A redirect could carry the code somewhere else.
        redirect: "error",
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`SMS webhook answered HTTP ${response.status}`);
    },
  };
}
