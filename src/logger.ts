// Structured logging. Secrets are redacted by path so that no call site has to remember.
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

export const redactPaths = [
  "password",
  "*.password",
  "currentPassword",
  "newPassword",
  "*.currentPassword",
  "*.newPassword",
  "token",
  "*.token",
  "accessToken",
  "refreshToken",
  "*.accessToken",
  "*.refreshToken",
  "code",
  "*.code",
  "authorization",
  "*.authorization",
  'headers["x-service-key"]',
  // Query parameters of database errors can hold hashes and codes.
  "err.parameters",
  "err.cause.parameters",
  "err.driverError.parameters",
  "err.query",
  "err.cause.query",
  "serviceKey",
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "identity" },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
