// Development only: the last messages the console provider "sent", kept in memory so the web
// app's development outbox panel can show them (GET /dev/outbox on the gateway). Production
// never builds one: configuration refuses the console provider there.
import type { OtpMessage } from "../domain/otp/messages.js";

export interface OutboxEntry extends OtpMessage {
  readonly id: number;
  /** When it was sent, ISO 8601. */
  readonly time: string;
}

export interface DevOutbox {
  add(message: OtpMessage): void;
  /** Newest first. */
  list(): readonly OutboxEntry[];
}

export function createDevOutbox(capacity = 50): DevOutbox {
  const entries: OutboxEntry[] = [];
  let serial = 0;
  return {
    add(message) {
      const { channel, to, subject, text } = message;
      entries.unshift({ id: ++serial, time: new Date().toISOString(), channel, to, subject, text });
      entries.length = Math.min(entries.length, capacity);
    },
    list: () => [...entries],
  };
}
