// The log's two shapes: JSON lines whose level is a name, and pino-pretty's readable lines when
// stdout is a terminal or LOG_FORMAT=pretty. Redaction applies to both.
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger, logDestination } from "../../src/logger.js";

function capture(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("log output", () => {
  it("writes JSON with the level's name when the output is no terminal", async () => {
    const out = capture(false);
    const destination = await logDestination(undefined, out.stream);
    expect(destination).toBeUndefined();
    const lines: string[] = [];
    const logger = createLogger("debug", { write: (line: string) => void lines.push(line) });
    logger.debug({ password: "hunter2 hunter2" }, "quiet");
    logger.error("loud");
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toMatchObject([
      { level: "debug", msg: "quiet", password: "[redacted]" },
      { level: "error", msg: "loud" },
    ]);
  });

  it("writes readable lines on a terminal, or when LOG_FORMAT=pretty asks, without the secrets", async () => {
    for (const [format, isTTY] of [[undefined, true], ["pretty", false]] as const) {
      const out = capture(isTTY);
      const logger = createLogger("info", await logDestination(format, out.stream));
      logger.warn({ password: "hunter2 hunter2", userId: "u-1" }, "signed in");
      await flush();
      expect(out.text()).toMatch(/WARN.*signed in/);
      expect(out.text()).toContain("u-1");
      expect(out.text()).not.toContain("hunter2");
      expect(out.text().trimStart()).not.toMatch(/^\{/);
    }
  });

  it("writes JSON on a terminal when LOG_FORMAT=json forces it", async () => {
    expect(await logDestination("json", capture(true).stream)).toBeUndefined();
  });

  it("reads LOG_FORMAT: json, pretty or unset (by the terminal)", () => {
    expect(loadConfig({ NODE_ENV: "test" }).logFormat).toBeUndefined();
    expect(loadConfig({ NODE_ENV: "test", LOG_FORMAT: "pretty" }).logFormat).toBe("pretty");
    expect(() => loadConfig({ NODE_ENV: "test", LOG_FORMAT: "yaml" })).toThrow(/LOG_FORMAT must be one of json, pretty/);
  });
});
