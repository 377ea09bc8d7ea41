// Development delivery: the message, code included, as one structured line in the service log.
// Configuration refuses it when NODE_ENV=production. The code travels inside `text`, which the
// logger does not redact (it redacts fields named `code`), so a developer can read it.
import type { Logger } from "../logger.js";
import type { OtpSender } from "../domain/otp/messages.js";
import type { DevOutbox } from "./dev-outbox.js";

/** Also keeps each message in `outbox`, when given, for the web app's development panel. */
export function createConsoleSender(logger: Logger, outbox?: DevOutbox): OtpSender {
  return {
    name: "console",
    async send(message) {
      outbox?.add(message);
      logger.info(
        { otpDelivery: "console", channel: message.channel, to: message.to, subject: message.subject, text: message.text },
        "one-time code message (development delivery)",
      );
    },
  };
}
