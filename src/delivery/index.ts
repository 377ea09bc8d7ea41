// Builds the sender of each channel from configuration; a disabled channel has none.
import type { OtpConfig } from "../config.js";
import type { Logger } from "../logger.js";
import type { OtpSenders } from "../domain/otp/messages.js";
import { createConsoleSender } from "./console.js";
import type { DevOutbox } from "./dev-outbox.js";
import { createSmsWebhookSender } from "./sms-webhook.js";
import { createSmtpSender } from "./smtp.js";

export function createOtpSenders(config: OtpConfig, logger: Logger, outbox?: DevOutbox): OtpSenders {
  const senders: OtpSenders = {};
  if (config.emailProvider === "console") senders.email = createConsoleSender(logger, outbox);
  if (config.emailProvider === "smtp" && config.smtp) {
    senders.email = createSmtpSender({ ...config.smtp, timeoutMs: config.deliveryTimeoutMs });
  }
  if (config.smsProvider === "console") senders.sms = createConsoleSender(logger, outbox);
  if (config.smsProvider === "webhook" && config.smsWebhook) {
    senders.sms = createSmsWebhookSender({ ...config.smsWebhook, timeoutMs: config.deliveryTimeoutMs });
  }
  return senders;
}
