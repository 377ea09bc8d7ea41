// Configuration is validated once at start: a bad value stops the service with a message that
// names the variable; production mode refuses development defaults.
import { execFile, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { createTestDatabase } from "../support/database.js";
import { freePort } from "../support/ports.js";
import { spawnServiceProcess } from "../support/process.js";
import { prepared } from "../support/setup.js";
import { createGrpcJsTransport } from "../support/transports.js";

const KEK = Buffer.alloc(32, 1).toString("base64");
const SERVICE_KEY = "k".repeat(40);
const production = { NODE_ENV: "production", DATABASE_URL: "postgres://identity@db.internal/identity", TOKEN_ISSUER: "https://id.example.com", KEY_ENCRYPTION_KEY: KEK, SERVICE_KEYS: `ops:${SERVICE_KEY}`, CORS_ORIGINS: "https://app.example.com", PUBLIC_URL: "https://id.example.com" };

describe("loadConfig", () => {
  it("has working development defaults", () => {
    const config = loadConfig({});
    expect(config.production).toBe(false);
    expect(config.grpcPort).toBe(50051);
    expect(config.httpPort).toBe(8080);
    expect(config.argon2).toEqual({ memoryKiB: 19456, iterations: 2, parallelism: 1 });
    expect(config.accessTokenTtlSec).toBe(300);
    // Issue 14: hashing in a process of its own at nice 10; V8's old generation collected at 25% growth.
    expect(config.hashing).toMatchObject({ isolation: "process", nice: 10 });
    expect(config.heapGrowingPercent).toBe(25);
  });

  it.each([
    [{ GRPC_PORT: "abc" }, "GRPC_PORT"],
    [{ HTTP_PORT: "70000" }, "HTTP_PORT"],
    [{ ACCESS_TOKEN_TTL_SECONDS: "5" }, "ACCESS_TOKEN_TTL_SECONDS"],
    [{ ARGON2_MEMORY_KIB: "-1" }, "ARGON2_MEMORY_KIB"],
    [{ KEY_ENCRYPTION_KEY: "c2hvcnQ=" }, "KEY_ENCRYPTION_KEY"],
    [{ SERVICE_KEYS: "ops:short" }, "SERVICE_KEYS"],
    [{ SERVICE_KEYS: `Billing:${SERVICE_KEY}` }, "SERVICE_KEYS"],
    [{ SERVICE_KEYS: `ops:${SERVICE_KEY},ops:${"m".repeat(40)}` }, "SERVICE_KEYS"],
    [{ SERVICE_KEYS: `ops:${SERVICE_KEY},web:${SERVICE_KEY}` }, "SERVICE_KEYS"],
    [{ CORS_ORIGINS: "not a url" }, "CORS_ORIGINS"],
    [{ TRUSTED_PROXIES: "10.0.0.0/33" }, "TRUSTED_PROXIES"],
    [{ TRUSTED_PROXIES: "gateway.internal" }, "TRUSTED_PROXIES"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ HASH_ISOLATION: "thread" }, "HASH_ISOLATION"],
    [{ HASH_NICE: "20" }, "HASH_NICE"],
    [{ HASH_NICE: "-1" }, "HASH_NICE"],
    [{ HEAP_GROWING_PERCENT: "-5" }, "HEAP_GROWING_PERCENT"],
    [{ HEAP_GROWING_PERCENT: "lots" }, "HEAP_GROWING_PERCENT"],
    [{ MFA_CHALLENGE_TTL_SECONDS: "600" }, "MFA_CHALLENGE_TTL_SECONDS"],
    [{ SESSION_ABSOLUTE_TTL_SECONDS: "60", ACCESS_TOKEN_TTL_SECONDS: "300" }, "SESSION_ABSOLUTE_TTL_SECONDS"],
  ])("refuses %j naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("trusts no proxy by default, and reads TRUSTED_PROXIES as IPs, CIDRs and proxy-addr names", () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, 192.0.2.7 ,loopback,uniquelocal,2001:db8::/32" }).trustedProxies).toEqual([
      "10.0.0.0/8", "192.0.2.7", "loopback", "uniquelocal", "2001:db8::/32",
    ]);
  });

  it("reads SERVICE_KEYS as name:key pairs (the key may hold colons)", () => {
    expect(loadConfig({ SERVICE_KEYS: `billing:${SERVICE_KEY}, bff-web:a:${SERVICE_KEY}` }).serviceKeys).toEqual([
      { name: "billing", key: SERVICE_KEY },
      { name: "bff-web", key: `a:${SERVICE_KEY}` },
    ]);
  });

  it("refuses the old nameless SERVICE_KEYS form with a message that says what changed and never quotes the key", () => {
    let message = "";
    try {
      loadConfig({ SERVICE_KEYS: SERVICE_KEY });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/name:key pairs/);
    expect(message).not.toContain(SERVICE_KEY);
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
    ["PUBLIC_URL", { ...production, PUBLIC_URL: "" }],
  ])("production refuses the development default of %s", (name, env) => {
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("samples no successful hot call into the access log by default, and reads ACCESS_LOG_SAMPLE_RATE as a fraction", () => {
    expect(loadConfig({}).accessLogSampleRate).toBe(0);
    expect(loadConfig({ ACCESS_LOG_SAMPLE_RATE: "" }).accessLogSampleRate).toBe(0);
    expect(loadConfig({ ACCESS_LOG_SAMPLE_RATE: "0.01" }).accessLogSampleRate).toBe(0.01);
    expect(loadConfig({ ACCESS_LOG_SAMPLE_RATE: ".5" }).accessLogSampleRate).toBe(0.5);
    expect(loadConfig({ ACCESS_LOG_SAMPLE_RATE: "1" }).accessLogSampleRate).toBe(1);
  });

  it.each(["-0.1", "1.5", "2", "abc", "1e-2", "0,5", "NaN", "Infinity", "50%", " 0.1"])("refuses ACCESS_LOG_SAMPLE_RATE %j with a message naming the variable and the range", (raw) => {
    expect(() => loadConfig({ ACCESS_LOG_SAMPLE_RATE: raw })).toThrow(ConfigError);
    expect(() => loadConfig({ ACCESS_LOG_SAMPLE_RATE: raw })).toThrow(/^ACCESS_LOG_SAMPLE_RATE must be a number from 0 to 1/);
  });

  it("ages gRPC connections after 10 minutes by default, with no grace limit; 0 turns it off", () => {
    expect(loadConfig({}).grpcConnectionAge).toEqual({ maxAgeMs: 600_000, maxAgeGraceMs: undefined });
    expect(loadConfig({ GRPC_MAX_CONNECTION_AGE_MS: "0" }).grpcConnectionAge).toEqual({ maxAgeMs: 0, maxAgeGraceMs: undefined });
    expect(loadConfig({ GRPC_MAX_CONNECTION_AGE_MS: "30000", GRPC_MAX_CONNECTION_AGE_GRACE_MS: "5000" }).grpcConnectionAge).toEqual({ maxAgeMs: 30_000, maxAgeGraceMs: 5_000 });
    expect(() => loadConfig({ GRPC_MAX_CONNECTION_AGE_MS: "500" })).toThrow(/GRPC_MAX_CONNECTION_AGE_MS must be 0 \(never\) or at least 1000/);
    expect(() => loadConfig({ GRPC_MAX_CONNECTION_AGE_MS: "soon" })).toThrow(/GRPC_MAX_CONNECTION_AGE_MS must be an integer/);
    expect(() => loadConfig({ GRPC_MAX_CONNECTION_AGE_MS: "0", GRPC_MAX_CONNECTION_AGE_GRACE_MS: "1000" })).toThrow(/GRPC_MAX_CONNECTION_AGE_GRACE_MS needs GRPC_MAX_CONNECTION_AGE_MS/);
  });

  it("serves metrics on 127.0.0.1:9464 unless told otherwise", () => {
    expect(loadConfig({})).toMatchObject({ metricsHost: "127.0.0.1", metricsPort: 9464 });
    expect(loadConfig({ METRICS_HOST: "::", METRICS_PORT: "9100" })).toMatchObject({ metricsHost: "::", metricsPort: 9100 });
  });

  it.each([
    ["::", "::"],
    ["[::]", "::"],
    ["[::1]", "::1"],
    ["FE80::1", "fe80::1"],
    ["0.0.0.0", "0.0.0.0"],
    ["127.0.0.1", "127.0.0.1"],
    ["localhost", "localhost"],
    ["Identity-1.internal", "identity-1.internal"],
    ["", "0.0.0.0"],
  ])("BIND_HOST %j listens on %j", (raw, host) => {
    expect(loadConfig({ BIND_HOST: raw }).bindHost).toBe(host);
  });

  it.each(["0.0.0.0:8080", "http://0.0.0.0", "1.2.3", "256.1.1.1", "[0.0.0.0]", "[::", "::g", "a b", "-host", "host_name"])(
    "refuses BIND_HOST %j naming the variable",
    (raw) => {
      expect(() => loadConfig({ BIND_HOST: raw })).toThrow(ConfigError);
      expect(() => loadConfig({ BIND_HOST: raw })).toThrow("BIND_HOST");
    },
  );

  it.each([
    [{ METRICS_HOST: "127.0.0.1:9464" }, "METRICS_HOST"],
    [{ METRICS_PORT: "metrics" }, "METRICS_PORT"],
    [{ METRICS_PORT: "8080" }, "METRICS_PORT"],
    [{ GRPC_PORT: "8080" }, "GRPC_PORT and HTTP_PORT"],
  ])("refuses %j naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });
});

describe("TLS variables", () => {
  // loadConfig checks only that the files can be read; their contents are checked when the
  // listeners start (test/server/tls.test.ts).
  const dir = mkdtempSync(path.join(tmpdir(), "identity-tls-config-"));
  const [cert, key, ca] = ["cert.pem", "key.pem", "ca.pem"].map((name) => {
    const file = path.join(dir, name);
    writeFileSync(file, "PEM");
    return file;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("leaves TLS off without them", () => {
    expect(loadConfig({}).tls).toBeUndefined();
  });

  it("reads roles: ordered, the first by default for new accounts, the highest administering", () => {
    expect(loadConfig({}).roles).toEqual({ roles: ["user", "admin"], defaultRole: "user", adminRoles: ["admin"], adminMaxAuthAgeSec: 600, accountRestoreDays: 30 });
    const seed004 = loadConfig({ ROLES: "user,staff,higher_staff,owner", DEFAULT_ROLE: "staff", ADMIN_ROLES: "higher_staff,owner", ADMIN_MAX_AUTH_AGE_SECONDS: "300", ACCOUNT_RESTORE_DAYS: "7" });
    expect(seed004.roles).toEqual({ roles: ["user", "staff", "higher_staff", "owner"], defaultRole: "staff", adminRoles: ["higher_staff", "owner"], adminMaxAuthAgeSec: 300, accountRestoreDays: 7 });
    expect(loadConfig({ ROLES: "member,owner" }).roles).toMatchObject({ defaultRole: "member", adminRoles: ["owner"] });
  });

  it.each([
    [{ ROLES: "user,Admin" }, "ROLES"],
    [{ ROLES: "user,user" }, "ROLES"],
    [{ DEFAULT_ROLE: "root" }, "DEFAULT_ROLE"],
    [{ ROLES: "user,owner", ADMIN_ROLES: "admin" }, "ADMIN_ROLES"],
    [{ ADMIN_MAX_AUTH_AGE_SECONDS: "5" }, "ADMIN_MAX_AUTH_AGE_SECONDS"],
    [{ ACCOUNT_RESTORE_DAYS: "-1" }, "ACCOUNT_RESTORE_DAYS"],
  ])("refuses a bad role setting %o naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("turns TLS on with a certificate and key, client certificates optional by default, files re-read every 60 s", () => {
    expect(loadConfig({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }).tls).toEqual({ certFile: cert, keyFile: key, clientCaFile: undefined, clientAuth: "optional", reloadIntervalMs: 60_000 });
    expect(loadConfig({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key, TLS_CLIENT_CA_FILE: ca, TLS_CLIENT_AUTH: "require", TLS_RELOAD_SECONDS: "5" }).tls).toEqual({
      certFile: cert, keyFile: key, clientCaFile: ca, clientAuth: "require", reloadIntervalMs: 5_000,
    });
  });

  it.each([
    [{ TLS_CERT_FILE: "cert" }, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"],
    [{ TLS_KEY_FILE: "key" }, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"],
    [{ TLS_CERT_FILE: "cert", TLS_KEY_FILE: "/nonexistent/key.pem" }, "TLS_KEY_FILE must name a readable file"],
    [{ TLS_CERT_FILE: "/nonexistent/cert.pem", TLS_KEY_FILE: "key" }, "TLS_CERT_FILE must name a readable file"],
    [{ TLS_CLIENT_CA_FILE: "ca" }, "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE"],
    [{ TLS_CLIENT_AUTH: "require" }, "TLS_CLIENT_AUTH needs"],
    [{ TLS_CERT_FILE: "cert", TLS_KEY_FILE: "key", TLS_CLIENT_AUTH: "require" }, "TLS_CLIENT_AUTH=require needs TLS_CLIENT_CA_FILE"],
    [{ TLS_CERT_FILE: "cert", TLS_KEY_FILE: "key", TLS_CLIENT_CA_FILE: "ca", TLS_CLIENT_AUTH: "always" }, "TLS_CLIENT_AUTH must be one of optional, require"],
    [{ TLS_CERT_FILE: "cert", TLS_KEY_FILE: "key", TLS_RELOAD_SECONDS: "0" }, "TLS_RELOAD_SECONDS"],
  ])("refuses %j: %s", (env, message) => {
    const named = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, ({ cert, key, ca } as Record<string, string>)[v] ?? v]));
    expect(() => loadConfig(named)).toThrow(ConfigError);
    expect(() => loadConfig(named)).toThrow(message);
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

describe("listening on IPv6 (BIND_HOST)", () => {
  const database = prepared(createTestDatabase, (db) => db.drop());

  it.each(["::", "[::]"])("BIND_HOST=%s starts, serves gRPC and the gateway on ::1 and 127.0.0.1, and stops cleanly", async (bindHost) => {
    const proc = await spawnServiceProcess(database().url, { BIND_HOST: bindHost });
    try {
      const grpcPort = proc.grpcAddress.split(":").pop();
      const httpPort = new URL(proc.httpUrl).port;
      for (const address of [`[::1]:${grpcPort}`, `127.0.0.1:${grpcPort}`]) {
        const transport = createGrpcJsTransport(address);
        const res = await createClient(AuthService, transport).signUp({ username: `v6-${bindHost.length}-${address.length}`, password: "a long enough passphrase" });
        expect(res.user?.id, address).toBeTruthy();
        transport.close();
      }
      for (const host of ["[::1]", "127.0.0.1"]) expect((await fetch(`http://${host}:${httpPort}/healthz`)).status, host).toBe(200);
      expect(proc.logLines.find((l) => l.includes('"identity service listening"'))).toContain('"host":"::"');
    } finally {
      expect(await proc.stop(), proc.logLines.join("\n")).toBe(0);
    }
  });
});

it.each(["HTTP_PORT", "GRPC_PORT"])("a start that fails after the embedded PostgreSQL started (%s in use) stops it and exits 1 with one line", async (busyVariable) => {
  const dir = mkdtempSync(path.join(tmpdir(), "identity-failed-start-"));
  // Embedded PostgreSQL runs as its own user (we are root here) and must reach its directory.
  chmodSync(dir, 0o755);
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", () => resolve()));
  const busyPort = (busy.address() as net.AddressInfo).port;
  const pgPort = await freePort();
  const pidFile = path.join(dir, "postgres", "postmaster.pid");
  try {
    const child = spawn(process.execPath, ["dist/src/main.js"], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: "test",
        DATA_DIR: dir,
        EMBEDDED_PG_PORT: String(pgPort),
        BIND_HOST: "127.0.0.1",
        GRPC_PORT: "0",
        HTTP_PORT: "0",
        METRICS_PORT: "0",
        [busyVariable]: String(busyPort), // taken: the start fails after the database is up
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: string[] = [];
    const stderr: string[] = [];
    child.stdout.on("data", (c: Buffer) => stdout.push(c.toString()));
    child.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const log = stdout.join("");
    expect(log, "PostgreSQL was started first").toContain("starting embedded PostgreSQL");
    expect(code, stderr.join("")).toBe(1);
    const lines = stderr.join("").split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^identity service failed to start: .*EADDRINUSE.*/);
    expect(stderr.join("") + log).not.toMatch(/\n\s+at /);
    // PostgreSQL is gone: no postmaster.pid, and nothing listens on its port.
    expect(existsSync(pidFile), "postmaster.pid left behind").toBe(false);
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(pgPort, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(false)));
      socket.once("error", () => resolve(true));
    });
    expect(refused, "PostgreSQL still accepts connections").toBe(true);
  } finally {
    busy.close();
    // On a failure above, do not leave the PostgreSQL this test started behind.
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      if (pid > 0) process.kill(pid, "SIGQUIT");
      await new Promise((r) => setTimeout(r, 1_000));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
