// The one place that reads the environment. Every variable is validated here; a bad
// value stops the process at start with a message naming the variable.
import { accessSync, constants as fsConstants } from "node:fs";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import path from "node:path";
import proxyaddr from "proxy-addr";

export interface Config {
  readonly production: boolean;
  readonly bindHost: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The Prometheus listener (GET /metrics only), apart from the public gateway. */
  readonly metricsHost: string;
  readonly metricsPort: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  readonly logLevel: string;
  /** ACCESS_LOG_SAMPLE_RATE: the fraction (0..1) of successful VerifyToken and Envoy Check calls logged at info; 0 logs none. */
  readonly accessLogSampleRate: number;
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSec: number;
  readonly refreshTokenIdleTtlSec: number;
  readonly sessionAbsoluteTtlSec: number;
  readonly argon2: { readonly memoryKiB: number; readonly iterations: number; readonly parallelism: number };
  readonly hashing: {
    readonly maxConcurrent: number;
    readonly maxQueue: number;
    /** `process`: argon2 runs in a child process at `nice`; `inline`: on this process's thread pool. */
    readonly isolation: "process" | "inline";
    readonly nice: number;
  };
  /** SERVICE_KEYS: bootstrap callers, each holding every permission and no audiences. */
  readonly serviceKeys: ReadonlyArray<{ readonly name: string; readonly key: string }>;
  readonly keyEncryptionKey: string | undefined;
  readonly corsOrigins: readonly string[];
  /** TRUSTED_PROXIES: IPs, CIDRs or proxy-addr names whose X-Forwarded-For is honoured. */
  readonly trustedProxies: readonly string[];
  /** The origin browsers reach the gateway at (PUBLIC_URL); https makes the refresh cookie `__Host-`. */
  readonly publicUrl: string | undefined;
  readonly maxMessageBytes: number;
  readonly maxDeadlineMs: number;
  readonly mfa: { readonly issuer: string; readonly challengeTtlSec: number };
  readonly keys: { readonly publishAheadSec: number; readonly rotationIntervalSec: number };
  /**
   * How far (percent) V8 lets the old generation grow past what survived the last full collection
   * before it collects again; 0 leaves V8's own heuristics (which let a busy heap grow up to 4x).
   */
  readonly heapGrowingPercent: number;
  readonly shutdownGraceMs: number;
  readonly otp: OtpConfig;
  readonly loginLimits: LoginLimitConfig;
  readonly signUpLimits: SignUpLimitConfig;
  /** How long a refresh token just rotated may be presented again without counting as reuse. */
  readonly refreshReuseGraceMs: number;
  /** TLS on both ports (TLS_CERT_FILE, TLS_KEY_FILE); undefined serves plaintext (h2c and HTTP). */
  readonly tls: TlsConfig | undefined;
  readonly profile: ProfileConfig;
  /** REAUTH_MAX_AGE_SECONDS: how recent a sign-in (or Reauthenticate) ChangeEmail / ChangePhone need. */
  readonly reauthMaxAgeSec: number;
  /** Roles and administration (issue 15). */
  readonly roles: RoleConfig;
  /** Time bounds on every database interaction, and the revocation staleness rule (issue 19). */
  readonly database: DatabaseBoundsConfig;
}

export interface DatabaseBoundsConfig {
  /** DB_QUERY_TIMEOUT_MS: statement_timeout, and pg's client-side read timeout (default 3000). */
  readonly queryTimeoutMs: number;
  /** DB_LOCK_TIMEOUT_MS: lock_timeout (default 2000). */
  readonly lockTimeoutMs: number;
  /** DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: idle_in_transaction_session_timeout (default 10000). */
  readonly idleInTransactionTimeoutMs: number;
  /** DB_POOL_WAIT_MS: how long a call waits for a pool connection, or for a new one to open (default 5000, as before issue 19). */
  readonly poolWaitMs: number;
  /** REVOCATION_MAX_STALENESS_MS: past this age of the revocation state VerifyToken answers UNAVAILABLE (default 60000). */
  readonly revocationMaxStalenessMs: number;
}

export interface RoleConfig {
  /** ROLES: every role an account may hold, lowest first (the last one is the highest). */
  readonly roles: readonly string[];
  /** DEFAULT_ROLE: the role of new accounts (default: the first of ROLES). */
  readonly defaultRole: string;
  /** ADMIN_ROLES: the roles whose holders may call AdminService (default: the highest only). */
  readonly adminRoles: readonly string[];
  /** ADMIN_MAX_AUTH_AGE_SECONDS: how recent an administrator's second factor must be (default 600). */
  readonly adminMaxAuthAgeSec: number;
  /** ACCOUNT_RESTORE_DAYS: how long a deleted account can be restored (default 30). */
  readonly accountRestoreDays: number;
}

/** The profile attributes REQUIRED_PROFILE_FIELDS may list (their names in the proto). */
export const REQUIRABLE_PROFILE_FIELDS = ["display_name", "given_name", "family_name", "country", "birth_date"] as const;
export type RequirableProfileField = (typeof REQUIRABLE_PROFILE_FIELDS)[number];

export interface ProfileConfig {
  /** MIN_AGE: the youngest age (years) a given birth date may say; 0 checks none. */
  readonly minAge: number;
  /** REQUIRED_PROFILE_FIELDS: attributes sign-up must give and UpdateProfile may not clear. */
  readonly requiredFields: ReadonlySet<RequirableProfileField>;
}

function requiredProfileFields(env: Env): Set<RequirableProfileField> {
  const names = list(env, "REQUIRED_PROFILE_FIELDS", []);
  for (const name of names) {
    if (!(REQUIRABLE_PROFILE_FIELDS as readonly string[]).includes(name)) {
      throw new ConfigError(`REQUIRED_PROFILE_FIELDS may list ${REQUIRABLE_PROFILE_FIELDS.join(", ")}; "${name}" is none of them`);
    }
  }
  return new Set(names as RequirableProfileField[]);
}

export interface TlsConfig {
  /** PEM: the certificate chain both ports present, and its private key. */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM: the CA(s) client certificates on the gRPC port must chain to (mutual TLS); undefined asks for none. */
  readonly clientCaFile: string | undefined;
  /** `require` refuses a gRPC connection without a valid client certificate; `optional` accepts both. */
  readonly clientAuth: "optional" | "require";
  /** How often the files are read again; a changed certificate or CA serves new connections after that. */
  readonly reloadIntervalMs: number;
}

export type EmailProvider = "console" | "smtp" | "disabled";
export type SmsProvider = "console" | "webhook" | "disabled";

export interface OtpConfig {
  readonly ttlSec: number;
  readonly resendCooldownSec: number;
  readonly maxSendsPerDestinationPerHour: number;
  readonly maxSendsPerIpPerHour: number;
  readonly maxVerifyFailuresPerIpPerHour: number;
  /** SMS sends per hour across all clients, and per country calling code (overrides by code, "+44"). */
  readonly smsMaxSendsPerHour: number;
  readonly smsMaxSendsPerCountryPerHour: number;
  readonly smsCountryLimits: ReadonlyMap<string, number>;
  /** Whether a LOGIN code for an unknown destination creates an account. */
  readonly signUpEnabled: boolean;
  readonly emailProvider: EmailProvider;
  readonly smsProvider: SmsProvider;
  readonly smtp: { readonly url: string; readonly from: string } | undefined;
  readonly smsWebhook: { readonly url: string; readonly secret: string | undefined } | undefined;
  readonly deliveryTimeoutMs: number;
}

export interface LoginLimitConfig {
  readonly maxFailuresPerAccountPerHour: number;
  readonly maxFailuresPerIpPerHour: number;
}

export interface SignUpLimitConfig {
  readonly maxPerIpPerHour: number;
  readonly maxPerHour: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A fraction from 0 to 1 inclusive, as a plain decimal ("0.01", "1", ".5"). */
function fraction(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(raw)) throw new ConfigError(`${name} must be a number from 0 to 1 (e.g. 0.01), got "${raw}"`);
  const value = Number(raw);
  if (value > 1) throw new ConfigError(`${name} must be a number from 0 to 1 (e.g. 0.01), got ${raw}`);
  return value;
}

function list(env: Env, name: string, fallback: readonly string[]): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return [...fallback];
  return raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  return raw as T;
}

/** OTP_SMS_COUNTRY_LIMITS: "+1:500,+44:100", a calling code and its sends per hour each. */
function countryLimits(env: Env, name: string): Map<string, number> {
  const limits = new Map<string, number>();
  for (const entry of list(env, name, [])) {
    const match = /^\+([1-9]\d{0,2}):(\d{1,7})$/.exec(entry);
    if (!match || Number(match[2]) < 1) throw new ConfigError(`${name} entries must look like +44:100 (calling code:sends per hour), got "${entry}"`);
    limits.set(`+${match[1]}`, Number(match[2]));
  }
  return limits;
}

function loadOtpConfig(env: Env, production: boolean): OtpConfig {
  // Development sends codes to the log; production has no default provider: a channel stays
  // disabled until one is configured, and the console provider is refused outright.
  const fallback = production ? "disabled" : "console";
  const emailProvider = oneOf<EmailProvider>(env, "OTP_EMAIL_PROVIDER", fallback, ["console", "smtp", "disabled"]);
  const smsProvider = oneOf<SmsProvider>(env, "OTP_SMS_PROVIDER", fallback, ["console", "webhook", "disabled"]);
  if (production && emailProvider === "console") throw new ConfigError("OTP_EMAIL_PROVIDER=console is refused when NODE_ENV=production (it logs codes)");
  if (production && smsProvider === "console") throw new ConfigError("OTP_SMS_PROVIDER=console is refused when NODE_ENV=production (it logs codes)");
  let smtp: OtpConfig["smtp"];
  if (emailProvider === "smtp") {
    const url = env.SMTP_URL ?? "";
    if (!/^smtps?:\/\/[^\s/]+/.test(url)) throw new ConfigError("SMTP_URL must be an smtp:// or smtps:// URL when OTP_EMAIL_PROVIDER=smtp");
    const from = env.SMTP_FROM ?? "";
    if (!/@[^\s@]+\.[^\s@]+/.test(from)) throw new ConfigError("SMTP_FROM must be a sender address (e.g. Identity <no-reply@example.com>) when OTP_EMAIL_PROVIDER=smtp");
    smtp = { url, from };
  }
  let smsWebhook: OtpConfig["smsWebhook"];
  if (smsProvider === "webhook") {
    const url = env.SMS_WEBHOOK_URL ?? "";
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !["http:", "https:"].includes(parsed.protocol)) {
      throw new ConfigError("SMS_WEBHOOK_URL must be an http:// or https:// URL when OTP_SMS_PROVIDER=webhook");
    }
    if (production && parsed.protocol !== "https:" && !["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname)) {
      throw new ConfigError("SMS_WEBHOOK_URL must use https:// when NODE_ENV=production (the message carries the code)");
    }
    smsWebhook = { url, secret: env.SMS_WEBHOOK_SECRET || undefined };
  }
  return {
    ttlSec: int(env, "OTP_TTL_SECONDS", 300, 30, 600),
    resendCooldownSec: int(env, "OTP_RESEND_COOLDOWN_SECONDS", 30, 1, 3600),
    maxSendsPerDestinationPerHour: int(env, "OTP_MAX_SENDS_PER_DESTINATION_PER_HOUR", 5, 1, 100),
    maxSendsPerIpPerHour: int(env, "OTP_MAX_SENDS_PER_IP_PER_HOUR", 30, 1, 1_000_000),
    maxVerifyFailuresPerIpPerHour: int(env, "OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR", 60, 1, 1_000_000),
    smsMaxSendsPerHour: int(env, "OTP_SMS_MAX_SENDS_PER_HOUR", 1_000, 1, 1_000_000),
    smsMaxSendsPerCountryPerHour: int(env, "OTP_SMS_MAX_SENDS_PER_COUNTRY_PER_HOUR", 300, 1, 1_000_000),
    smsCountryLimits: countryLimits(env, "OTP_SMS_COUNTRY_LIMITS"),
    signUpEnabled: bool(env, "OTP_SIGN_UP", true),
    emailProvider,
    smsProvider,
    smtp,
    smsWebhook,
    deliveryTimeoutMs: int(env, "OTP_DELIVERY_TIMEOUT_MS", 10_000, 100, 60_000),
  };
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/**
 * A listen address: an IPv4 or IPv6 literal (brackets optional: `::`, `[::]`) or a host name,
 * normalised to what node's listen() takes (IPv6 without brackets, lower case). Anything else
 * (a port, a URL, a mistyped address like 1.2.3) stops the start here rather than in listen().
 */
function listenHost(env: Env, name: string, fallback: string): string {
  const raw = (env[name] ?? "").trim();
  if (raw === "") return fallback;
  const bare = /^\[.*\]$/.test(raw) ? raw.slice(1, -1) : raw;
  if (isIP(bare) === 6) return bare.toLowerCase();
  if (bare === raw && isIP(raw) === 4) return raw;
  const host = raw.toLowerCase();
  // A name whose last label is all digits is a mistyped IPv4 address, not a host name.
  if (bare === raw && HOSTNAME.test(host) && !/(^|\.)\d+$/.test(host)) return host;
  throw new ConfigError(`${name} must be an IPv4 or IPv6 address (e.g. 0.0.0.0, ::, [::1]) or a host name, got "${raw}"`);
}

/** PUBLIC_URL as an origin (`https://id.example.com`), or undefined when unset. */
function publicOrigin(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || !["http:", "https:"].includes(url.protocol) || url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
    throw new ConfigError(`PUBLIC_URL must be an origin like https://id.example.com (no path), got "${raw}"`);
  }
  return url.origin;
}

/** A file the process must be able to read, as an absolute path. */
function readableFile(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const file = path.resolve(raw);
  try {
    accessSync(file, fsConstants.R_OK);
  } catch {
    throw new ConfigError(`${name} must name a readable file, got "${raw}"`);
  }
  return file;
}

function loadTlsConfig(env: Env): TlsConfig | undefined {
  const certFile = readableFile(env, "TLS_CERT_FILE");
  const keyFile = readableFile(env, "TLS_KEY_FILE");
  const clientCaFile = readableFile(env, "TLS_CLIENT_CA_FILE");
  const clientAuth = oneOf<TlsConfig["clientAuth"]>(env, "TLS_CLIENT_AUTH", "optional", ["optional", "require"]);
  const reloadIntervalMs = int(env, "TLS_RELOAD_SECONDS", 60, 1, 86_400) * 1000;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together (or neither, for plaintext)");
  }
  if (certFile === undefined || keyFile === undefined) {
    if (clientCaFile !== undefined) throw new ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS first)");
    if (env.TLS_CLIENT_AUTH) throw new ConfigError("TLS_CLIENT_AUTH needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE");
    return undefined;
  }
  // Without a CA no client certificate can be verified: `require` would refuse everyone.
  if (clientCaFile === undefined && clientAuth === "require") throw new ConfigError("TLS_CLIENT_AUTH=require needs TLS_CLIENT_CA_FILE");
  return { certFile, keyFile, clientCaFile, clientAuth, reloadIntervalMs };
}

/** A service account's name, as the ServiceAccounts migration checks it (it becomes sub = service:<name>). */
const CALLER_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** SERVICE_KEYS: comma-separated name:key pairs. Messages never quote a key. */
const ROLE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * ROLES, DEFAULT_ROLE and ADMIN_ROLES, validated together: a role named in DEFAULT_ROLE or
 * ADMIN_ROLES must be one of ROLES. A stored account whose role is not in ROLES (ROLES shrank)
 * is served as it is and ranks as the lowest role in AdminService (src/domain/admin/roles.ts).
 */
function loadRoleConfig(env: Env): RoleConfig {
  const roles = list(env, "ROLES", ["user", "admin"]);
  for (const role of roles) {
    if (!ROLE_NAME.test(role)) throw new ConfigError(`ROLES entries must be 1 to 32 characters of a-z, 0-9, '_', '-', starting with a letter, got "${role}"`);
  }
  if (new Set(roles).size !== roles.length) throw new ConfigError("ROLES must not name a role twice");
  const highest = roles[roles.length - 1]!;
  const defaultRole = env.DEFAULT_ROLE?.trim() || roles[0]!;
  if (!roles.includes(defaultRole)) throw new ConfigError(`DEFAULT_ROLE must be one of ROLES (${roles.join(", ")}), got "${defaultRole}"`);
  const adminRoles = list(env, "ADMIN_ROLES", [highest]);
  for (const role of adminRoles) {
    if (!roles.includes(role)) throw new ConfigError(`ADMIN_ROLES entries must be among ROLES (${roles.join(", ")}), got "${role}"`);
  }
  return {
    roles,
    defaultRole,
    adminRoles,
    adminMaxAuthAgeSec: int(env, "ADMIN_MAX_AUTH_AGE_SECONDS", 600, 30, 86_400),
    accountRestoreDays: int(env, "ACCOUNT_RESTORE_DAYS", 30, 0, 3650),
  };
}

function loadServiceKeys(env: Env): Array<{ name: string; key: string }> {
  const entries = list(env, "SERVICE_KEYS", []).map((entry, index) => {
    const colon = entry.indexOf(":");
    const name = colon < 0 ? "" : entry.slice(0, colon);
    const key = colon < 0 ? entry : entry.slice(colon + 1);
    if (!CALLER_NAME.test(name)) {
      throw new ConfigError(
        `SERVICE_KEYS entries are name:key pairs (billing:<32+ characters>); entry ${index + 1} has no valid name ` +
          "(a lower-case letter, then up to 62 lower-case letters, digits or hyphens). Nameless keys are no longer accepted: prefix each with a name",
      );
    }
    if (key.length < 32) throw new ConfigError(`SERVICE_KEYS: the key of "${name}" must be at least 32 characters`);
    return { name, key };
  });
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const { name, key } of entries) {
    if (names.has(name)) throw new ConfigError(`SERVICE_KEYS names "${name}" twice`);
    if (keys.has(key)) throw new ConfigError(`SERVICE_KEYS: "${name}" repeats another entry's key`);
    names.add(name);
    keys.add(key);
  }
  return entries;
}

// A hung PostgreSQL must cost a call a few seconds, never its whole deadline (issue 19).
function loadDatabaseBounds(env: Env): DatabaseBoundsConfig {
  return {
    queryTimeoutMs: int(env, "DB_QUERY_TIMEOUT_MS", 3_000, 100, 600_000),
    lockTimeoutMs: int(env, "DB_LOCK_TIMEOUT_MS", 2_000, 100, 600_000),
    idleInTransactionTimeoutMs: int(env, "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 10_000, 100, 3_600_000),
    poolWaitMs: int(env, "DB_POOL_WAIT_MS", 5_000, 100, 600_000),
    revocationMaxStalenessMs: int(env, "REVOCATION_MAX_STALENESS_MS", 60_000, 1_000, 86_400_000),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === "production";
  const httpPort = int(env, "HTTP_PORT", 8080, 0, 65535);
  const serviceKeys = loadServiceKeys(env);
  const corsOrigins = list(env, "CORS_ORIGINS", production ? [] : [`http://localhost:${httpPort}`, `http://127.0.0.1:${httpPort}`]);
  for (const origin of corsOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`CORS_ORIGINS entries must be origins like https://app.example.com, got "${origin}"`);
    }
  }
  const trustedProxies = list(env, "TRUSTED_PROXIES", []);
  try {
    proxyaddr.compile(trustedProxies);
  } catch (err) {
    throw new ConfigError(`TRUSTED_PROXIES must list IP addresses, CIDRs (10.0.0.0/8) or loopback, linklocal, uniquelocal: ${(err as Error).message}`);
  }
  const publicUrl = publicOrigin(env.PUBLIC_URL);
  const keyEncryptionKey = env.KEY_ENCRYPTION_KEY || undefined;
  if (keyEncryptionKey !== undefined && Buffer.from(keyEncryptionKey, "base64").length !== 32) {
    throw new ConfigError("KEY_ENCRYPTION_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)");
  }
  const config: Config = {
    production,
    bindHost: listenHost(env, "BIND_HOST", "0.0.0.0"),
    grpcPort: int(env, "GRPC_PORT", 50051, 0, 65535),
    httpPort,
    metricsHost: listenHost(env, "METRICS_HOST", "127.0.0.1"),
    metricsPort: int(env, "METRICS_PORT", 9464, 0, 65535),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(env.DATA_DIR || ".data"),
    embeddedPgPort: int(env, "EMBEDDED_PG_PORT", 54329, 1024, 65535),
    logLevel: env.LOG_LEVEL || "info",
    accessLogSampleRate: fraction(env, "ACCESS_LOG_SAMPLE_RATE", 0),
    issuer: env.TOKEN_ISSUER || "http://localhost:8080",
    audience: env.TOKEN_AUDIENCE || "identity",
    accessTokenTtlSec: int(env, "ACCESS_TOKEN_TTL_SECONDS", 300, 30, 3600),
    refreshTokenIdleTtlSec: int(env, "REFRESH_TOKEN_IDLE_TTL_SECONDS", 14 * 86400, 60, 365 * 86400),
    sessionAbsoluteTtlSec: int(env, "SESSION_ABSOLUTE_TTL_SECONDS", 30 * 86400, 60, 365 * 86400),
    argon2: {
      memoryKiB: int(env, "ARGON2_MEMORY_KIB", 19456, 1024, 4 * 1024 * 1024),
      iterations: int(env, "ARGON2_ITERATIONS", 2, 1, 100),
      parallelism: int(env, "ARGON2_PARALLELISM", 1, 1, 16),
    },
    hashing: {
      maxConcurrent: int(env, "HASH_CONCURRENCY", Math.max(1, Math.min(availableParallelism(), 4)), 1, 64),
      maxQueue: int(env, "HASH_QUEUE_LIMIT", 64, 0, 10_000),
      isolation: oneOf(env, "HASH_ISOLATION", "process", ["process", "inline"] as const),
      nice: int(env, "HASH_NICE", 10, 0, 19),
    },
    serviceKeys,
    keyEncryptionKey,
    corsOrigins,
    trustedProxies,
    publicUrl,
    maxMessageBytes: int(env, "MAX_MESSAGE_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
    maxDeadlineMs: int(env, "MAX_DEADLINE_MS", 30_000, 100, 600_000),
    keys: {
      publishAheadSec: int(env, "KEY_PUBLISH_AHEAD_SECONDS", 600, 0, 7 * 86400),
      rotationIntervalSec: int(env, "KEY_ROTATION_DAYS", 30, 0, 3650) * 86400,
    },
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    heapGrowingPercent: int(env, "HEAP_GROWING_PERCENT", 25, 0, 400),
    mfa: {
      issuer: env.TOTP_ISSUER || "grpc-identity",
      challengeTtlSec: int(env, "MFA_CHALLENGE_TTL_SECONDS", 300, 30, 300),
    },
    otp: loadOtpConfig(env, production),
    loginLimits: {
      // 100 is also the ceiling: never more than 100 failed logins per account per hour.
      maxFailuresPerAccountPerHour: int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", 100, 1, 100),
      maxFailuresPerIpPerHour: int(env, "LOGIN_MAX_FAILURES_PER_IP_PER_HOUR", 300, 1, 1_000_000),
    },
    signUpLimits: {
      maxPerIpPerHour: int(env, "SIGNUP_MAX_PER_IP_PER_HOUR", 20, 1, 1_000_000),
      maxPerHour: int(env, "SIGNUP_MAX_PER_HOUR", 10_000, 1, 1_000_000),
    },
    // Short on purpose: a stolen token replayed inside the window is not detected as reuse.
    refreshReuseGraceMs: int(env, "REFRESH_REUSE_GRACE_MS", 2_000, 0, 30_000),
    tls: loadTlsConfig(env),
    profile: {
      minAge: int(env, "MIN_AGE", 0, 0, 150),
      requiredFields: requiredProfileFields(env),
    },
    // ASVS 7.5.1: re-authentication before changing an identifier the account is recovered by.
    reauthMaxAgeSec: int(env, "REAUTH_MAX_AGE_SECONDS", 300, 30, 86_400),
    roles: loadRoleConfig(env),
    database: loadDatabaseBounds(env),
  };
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(config.logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  if (production) {
    if (!config.keyEncryptionKey) throw new ConfigError("KEY_ENCRYPTION_KEY is required when NODE_ENV=production");
    if (config.serviceKeys.length === 0) throw new ConfigError("SERVICE_KEYS is required when NODE_ENV=production");
    if (config.corsOrigins.includes("*")) throw new ConfigError("CORS_ORIGINS may not be * when NODE_ENV=production");
    // Without it the gateway would take its own origin from the Host header (DNS rebinding).
    if (!config.publicUrl) throw new ConfigError("PUBLIC_URL is required when NODE_ENV=production (e.g. https://id.example.com)");
  }
  const ports = [["GRPC_PORT", config.grpcPort], ["HTTP_PORT", config.httpPort], ["METRICS_PORT", config.metricsPort]] as const;
  for (const [i, [name, port]] of ports.entries()) {
    const other = ports.slice(i + 1).find(([, p]) => p === port && p !== 0);
    if (other) throw new ConfigError(`${name} and ${other[0]} must differ, both are ${port}`);
  }
  if (config.sessionAbsoluteTtlSec < config.accessTokenTtlSec) {
    throw new ConfigError("SESSION_ABSOLUTE_TTL_SECONDS must be at least ACCESS_TOKEN_TTL_SECONDS");
  }
  return config;
}
