// Configuration is validated once at start: a bad value stops the service with a message that
// names the variable; production mode refuses development defaults.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const KEK = Buffer.alloc(32, 1).toString("base64");
const SERVICE_KEY = "k".repeat(40);
const production = { NODE_ENV: "production", KEY_ENCRYPTION_KEY: KEK, SERVICE_KEYS: SERVICE_KEY, CORS_ORIGINS: "https://app.example.com", PUBLIC_URL: "https://id.example.com" };

describe("loadConfig", () => {
  it("has working development defaults", () => {
    const config = loadConfig({});
    expect(config.production).toBe(false);
    expect(config.grpcPort).toBe(50051);
    expect(config.httpPort).toBe(8080);
    expect(config.argon2).toEqual({ memoryKiB: 19456, iterations: 2, parallelism: 1 });
    expect(config.accessTokenTtlSec).toBe(300);
  });

  it.each([
    [{ GRPC_PORT: "abc" }, "GRPC_PORT"],
    [{ HTTP_PORT: "70000" }, "HTTP_PORT"],
    [{ ACCESS_TOKEN_TTL_SECONDS: "5" }, "ACCESS_TOKEN_TTL_SECONDS"],
    [{ ARGON2_MEMORY_KIB: "-1" }, "ARGON2_MEMORY_KIB"],
    [{ KEY_ENCRYPTION_KEY: "c2hvcnQ=" }, "KEY_ENCRYPTION_KEY"],
    [{ SERVICE_KEYS: "short" }, "SERVICE_KEYS"],
    [{ CORS_ORIGINS: "not a url" }, "CORS_ORIGINS"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ MFA_CHALLENGE_TTL_SECONDS: "600" }, "MFA_CHALLENGE_TTL_SECONDS"],
    [{ SESSION_ABSOLUTE_TTL_SECONDS: "60", ACCESS_TOKEN_TTL_SECONDS: "300" }, "SESSION_ABSOLUTE_TTL_SECONDS"],
  ])("refuses %j naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("accepts a complete production configuration", () => {
    expect(loadConfig(production).production).toBe(true);
  });

  it.each([
    ["KEY_ENCRYPTION_KEY", { ...production, KEY_ENCRYPTION_KEY: "" }],
    ["SERVICE_KEYS", { ...production, SERVICE_KEYS: "" }],
    ["CORS_ORIGINS", { ...production, CORS_ORIGINS: "*" }],
    ["OTP_EMAIL_PROVIDER", { ...production, OTP_EMAIL_PROVIDER: "console" }],
    ["OTP_SMS_PROVIDER", { ...production, OTP_SMS_PROVIDER: "console" }],
  ])("production refuses the development default of %s", (name, env) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});

it("the service exits with a clear message on a bad variable, before touching any database", async () => {
  const run = promisify(execFile);
  const error = await run(process.execPath, ["dist/src/main.js"], {
    env: { PATH: process.env.PATH, GRPC_PORT: "not-a-port", DATA_DIR: "/nonexistent/never-created" },
  }).then(() => undefined, (err: { code: number; stderr: string }) => err);
  expect(error?.code).toBe(78);
  expect(error?.stderr).toContain("configuration error: GRPC_PORT must be an integer");
});
