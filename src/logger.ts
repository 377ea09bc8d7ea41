// Structured logging. Secrets are redacted by path so that no call site has to remember.
import { pino, type Logger, type DestinationStream } from "pino";
import { traceLogFields } from "./tracing.js";

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

export interface LoggerOptions {
  /** Tracing is on (config.tracing): every line written inside a span carries its trace_id and span_id. */
  readonly traceIds?: boolean;
}

export function createLogger(level: string, destination?: DestinationStream, { traceIds = false }: LoggerOptions = {}): Logger {
  return pino(
    {
      level,
      base: { service: "identity" },
      redact: { paths: redactPaths, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"info", not "level":30: what a person reading the log and most collectors expect.
      formatters: { level: (label) => ({ level: label }) },
      // No mixin at all without tracing: a line costs what it did.
      ...(traceIds ? { mixin: traceLogFields } : {}),
    },
    destination,
  );
}

/**
 * Where the service's log goes: JSON lines on stdout, or with LOG_FORMAT=pretty (the default
 * when stdout is a terminal) pino-pretty's readable lines. pino-pretty is loaded only then, and
 * a failure to load it falls back to JSON with a warning on stderr. Redaction happens before
 * either, so neither format shows a secret.
 */
export async function logDestination(
  format: "json" | "pretty" | undefined,
  output: NodeJS.WritableStream & { readonly isTTY?: boolean } = process.stdout,
): Promise<DestinationStream | undefined> {
  if ((format ?? (output.isTTY === true ? "pretty" : "json")) === "json") return undefined;
  try {
    const { default: pretty } = await import("pino-pretty");
    // Synchronous, as pino's own stdout is: the last lines before process.exit are not lost.
    return pretty({ destination: output, sync: true, colorize: output.isTTY === true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" });
  } catch (err) {
    process.stderr.write(`pino-pretty could not be loaded (${err instanceof Error ? err.message : String(err)}); logging JSON\n`);
    return undefined;
  }
}
