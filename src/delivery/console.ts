// Development delivery: the message, code included, as one structured line in the service log.
// Configuration refuses it when NODE_ENV=production. The code travels inside `text`, which the
// logger does not redact (it redacts fields named `code`), so a developer can read it.
import type { Logger } from "../logger.js";
import type { OtpSender } from "../domain/otp-messages.js";

export function createConsoleSender(logger: Logger): OtpSender {
  return {
    name: "console",
    async send(message) {
      logger.info(
        { otpDelivery: "console", channel: message.channel, to: message.to, subject: message.subject, text: message.text },
        "one-time code message (development delivery)",
      );
    },
  };
}
