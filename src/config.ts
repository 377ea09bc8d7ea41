// The one place that reads the environment. Every variable is validated here; a bad
// value stops the process at start with a message naming the variable.
import { accessSync, constants as fsConstants, readFileSync } from "node:fs";
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
  /**
   * The key-encryption keyring (KEY_ENCRYPTION_KEYS, or KEY_ENCRYPTION_KEY as one key with the id
   * `default`): the first seals, every one unseals. Undefined when unset (development: dev-secrets.ts).
   */
  readonly keyEncryptionKeys: readonly KeyEncryptionKey[] | undefined;
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
  /** OpenTelemetry trace export (the standard OTEL_* variables); undefined: tracing is off. */
  readonly tracing: TracingConfig | undefined;
  /** LOG_FORMAT: json, pretty, or undefined to choose by whether stdout is a terminal. */
  readonly logFormat: "json" | "pretty" | undefined;
  /** Passkeys (WebAuthn, issue 17). */
  readonly webauthn: WebAuthnConfig;
  /** Sign-in with OpenID Connect providers (issue 17): OIDC_PROVIDERS and friends. */
  readonly federation: FederationConfig;
  /** GRPC_MAX_CONNECTION_AGE_MS and _GRACE_MS: when the gRPC port asks clients to reconnect (load balancing). */
  readonly grpcConnectionAge: GrpcConnectionAgeConfig;
  /** Time bounds on every database interaction, and the revocation staleness rule (issue 19). */
  readonly database: DatabaseBoundsConfig;
}

export interface WebAuthnConfig {
  /** WEBAUTHN_RP_ID: the relying party's domain, a registrable suffix of every origin's host. */
  readonly rpId: string;
  /** WEBAUTHN_RP_NAME: the name authenticators show. */
  readonly rpName: string;
  /** WEBAUTHN_ORIGINS: the page origins a ceremony may come from. */
  readonly origins: readonly string[];
  /** WEBAUTHN_CHALLENGE_TTL_SECONDS: how long a Start's challenge may be finished. */
  readonly challengeTtlSec: number;
}

export interface GrpcConnectionAgeConfig {
  /**
   * GRPC_MAX_CONNECTION_AGE_MS: after about this long (grpc-js adds +/-10% jitter) the gRPC port
   * sends GOAWAY on a connection, so that its client opens a new one, which an L4 balancer
   * (a Kubernetes Service) may place on another replica; 0 never does.
   */
  readonly maxAgeMs: number;
  /**
   * GRPC_MAX_CONNECTION_AGE_GRACE_MS: how long calls and streams already on an aged connection
   * may still run on it before it is closed; undefined (unset) lets them finish however long
   * they take (a WatchRevocations stream then keeps its connection until it ends).
   */
  readonly maxAgeGraceMs: number | undefined;
}

/** GRPC_MAX_CONNECTION_AGE_MS (default 10 minutes) and GRPC_MAX_CONNECTION_AGE_GRACE_MS (default unset: no limit). */
function loadGrpcConnectionAge(env: Env): GrpcConnectionAgeConfig {
  const maxAgeMs = int(env, "GRPC_MAX_CONNECTION_AGE_MS", 600_000, 0, 86_400_000);
  if (maxAgeMs > 0 && maxAgeMs < 1_000) throw new ConfigError(`GRPC_MAX_CONNECTION_AGE_MS must be 0 (never) or at least 1000, got ${maxAgeMs}`);
  const graceRaw = env.GRPC_MAX_CONNECTION_AGE_GRACE_MS;
  const maxAgeGraceMs = graceRaw === undefined || graceRaw === "" ? undefined : int(env, "GRPC_MAX_CONNECTION_AGE_GRACE_MS", 0, 0, 86_400_000);
  if (maxAgeGraceMs !== undefined && maxAgeMs === 0) throw new ConfigError("GRPC_MAX_CONNECTION_AGE_GRACE_MS needs GRPC_MAX_CONNECTION_AGE_MS (connections never age when it is 0)");
  return { maxAgeMs, maxAgeGraceMs };
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
      problem(`REQUIRED_PROFILE_FIELDS may list ${REQUIRABLE_PROFILE_FIELDS.join(", ")}; "${name}" is none of them`);
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

export interface KeyEncryptionKey {
  /** Recorded in every blob it seals, so the blob finds its key after a rotation. */
  readonly id: string;
  readonly key: Buffer;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  /** Every configuration error of the start, each naming its variable (the message joins them). */
  readonly errors: readonly string[];
  constructor(message: string, errors: readonly string[] = [message]) {
    super(message);
    this.errors = errors;
  }
}

type Env = Record<string, string | undefined>;

/**
 * The errors of the loadConfig run in progress: a bad value is recorded and the run goes on with
 * the default, so one start names every bad variable. Outside a run (a helper called on its own)
 * the first error throws.
 */
let pending: string[] | undefined;

function problem(message: string): void {
  if (pending) pending.push(message);
  else throw new ConfigError(message);
}

/**
 * A secret setting: NAME itself, or NAME_FILE naming a file that holds it (Docker and Kubernetes
 * secrets; one trailing newline is trimmed). Both set is an error. Every secret reads through
 * here: KEY_ENCRYPTION_KEY(S), SERVICE_KEYS, DATABASE_URL, SMTP_URL, SMS_WEBHOOK_SECRET, and any
 * secret added later.
 */
export function secret(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (file === undefined || file === "") return direct === "" ? undefined : direct;
  if (direct !== undefined && direct !== "") return problem(`${name} and ${name}_FILE are both set: set one`), undefined;
  try {
    const value = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    return value === "" ? (problem(`${name}_FILE names an empty file ("${file}")`), undefined) : value;
  } catch (err) {
    return problem(`${name}_FILE must name a readable file, got "${file}" (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`), undefined;
  }
}

/** The setting's value with a secret file read in (for helpers that take an Env and a name). */
function withSecret(env: Env, name: string): Env {
  return { [name]: secret(env, name) };
}

const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/;
/** The id KEY_ENCRYPTION_KEY's one key has (write it as `default:<key>` in KEY_ENCRYPTION_KEYS). */
export const DEFAULT_KEY_ID = "default";

function kekBytes(name: string, what: string, raw: string): Buffer | undefined {
  const key = Buffer.from(raw, "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(raw) || key.length !== 32) {
    return problem(`${name}: ${what} must be 32 bytes, base64-encoded (openssl rand -base64 32)`), undefined;
  }
  return key;
}

/**
 * KEY_ENCRYPTION_KEYS: "id1:key1,id0:key0", the current key first; or KEY_ENCRYPTION_KEY, one key
 * with the id `default`. Messages never quote a key.
 */
function loadKeyring(env: Env): KeyEncryptionKey[] | undefined {
  const single = secret(env, "KEY_ENCRYPTION_KEY");
  const ring = secret(env, "KEY_ENCRYPTION_KEYS");
  if (single !== undefined && ring !== undefined) {
    return problem("KEY_ENCRYPTION_KEY and KEY_ENCRYPTION_KEYS are both set: put the key in KEY_ENCRYPTION_KEYS as default:<key>"), undefined;
  }
  if (single !== undefined) {
    const key = kekBytes("KEY_ENCRYPTION_KEY", "the key", single);
    return key && [{ id: DEFAULT_KEY_ID, key }];
  }
  if (ring === undefined) return undefined;
  const keys: KeyEncryptionKey[] = [];
  for (const [index, entry] of list({ KEY_ENCRYPTION_KEYS: ring }, "KEY_ENCRYPTION_KEYS", []).entries()) {
    const colon = entry.indexOf(":");
    const id = colon < 0 ? "" : entry.slice(0, colon);
    if (!KEY_ID.test(id)) {
      problem(`KEY_ENCRYPTION_KEYS entries are id:key pairs (k2:<base64 key>, the current key first); entry ${index + 1} has no valid id (1 to 32 of A-Z a-z 0-9 . _ -)`);
      continue;
    }
    if (keys.some((k) => k.id === id)) problem(`KEY_ENCRYPTION_KEYS names the id "${id}" twice`);
    const key = kekBytes("KEY_ENCRYPTION_KEYS", `the key "${id}"`, entry.slice(colon + 1));
    if (key) keys.push({ id, key });
  }
  return keys.length > 0 ? keys : (problem("KEY_ENCRYPTION_KEYS holds no key"), undefined);
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) return problem(`${name} must be an integer, got "${raw}"`), fallback;
  const value = Number(raw);
  if (value < min || value > max) return problem(`${name} must be between ${min} and ${max}, got ${value}`), fallback;
  return value;
}

/** A fraction from 0 to 1 inclusive, as a plain decimal ("0.01", "1", ".5"). */
function fraction(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(raw)) return problem(`${name} must be a number from 0 to 1 (e.g. 0.01), got "${raw}"`), fallback;
  const value = Number(raw);
  if (value > 1) return problem(`${name} must be a number from 0 to 1 (e.g. 0.01), got ${raw}`), fallback;
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
  return problem(`${name} must be true or false, got "${raw}"`), fallback;
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) return problem(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`), fallback;
  return raw as T;
}

/** OTP_SMS_COUNTRY_LIMITS: "+1:500,+44:100", a calling code and its sends per hour each. */
function countryLimits(env: Env, name: string): Map<string, number> {
  const limits = new Map<string, number>();
  for (const entry of list(env, name, [])) {
    const match = /^\+([1-9]\d{0,2}):(\d{1,7})$/.exec(entry);
    if (!match || Number(match[2]) < 1) { problem(`${name} entries must look like +44:100 (calling code:sends per hour), got "${entry}"`); continue; }
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
  if (production && emailProvider === "console") problem("OTP_EMAIL_PROVIDER=console is refused when NODE_ENV=production (it logs codes)");
  if (production && smsProvider === "console") problem("OTP_SMS_PROVIDER=console is refused when NODE_ENV=production (it logs codes)");
  let smtp: OtpConfig["smtp"];
  if (emailProvider === "smtp") {
    const url = secret(env, "SMTP_URL") ?? "";
    if (!/^smtps?:\/\/[^\s/]+/.test(url)) problem("SMTP_URL must be an smtp:// or smtps:// URL when OTP_EMAIL_PROVIDER=smtp");
    const from = env.SMTP_FROM ?? "";
    if (!/@[^\s@]+\.[^\s@]+/.test(from)) problem("SMTP_FROM must be a sender address (e.g. Identity <no-reply@example.com>) when OTP_EMAIL_PROVIDER=smtp");
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
      problem("SMS_WEBHOOK_URL must be an http:// or https:// URL when OTP_SMS_PROVIDER=webhook");
    } else if (production && parsed.protocol !== "https:" && !["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname)) {
      problem("SMS_WEBHOOK_URL must use https:// when NODE_ENV=production (the message carries the code)");
    }
    smsWebhook = { url, secret: secret(env, "SMS_WEBHOOK_SECRET") };
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
  return problem(`${name} must be an IPv4 or IPv6 address (e.g. 0.0.0.0, ::, [::1]) or a host name, got "${raw}"`), fallback;
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
    return problem(`PUBLIC_URL must be an origin like https://id.example.com (no path), got "${raw}"`), undefined;
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
    return problem(`${name} must name a readable file, got "${raw}"`), undefined;
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
    return problem("TLS_CERT_FILE and TLS_KEY_FILE must be set together (or neither, for plaintext)"), undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    if (clientCaFile !== undefined) problem("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS first)");
    if (env.TLS_CLIENT_AUTH) problem("TLS_CLIENT_AUTH needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CLIENT_CA_FILE");
    return undefined;
  }
  // Without a CA no client certificate can be verified: `require` would refuse everyone.
  if (clientCaFile === undefined && clientAuth === "require") problem("TLS_CLIENT_AUTH=require needs TLS_CLIENT_CA_FILE");
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
    if (!ROLE_NAME.test(role)) problem(`ROLES entries must be 1 to 32 characters of a-z, 0-9, '_', '-', starting with a letter, got "${role}"`);
  }
  if (new Set(roles).size !== roles.length) problem("ROLES must not name a role twice");
  const highest = roles[roles.length - 1]!;
  const defaultRole = env.DEFAULT_ROLE?.trim() || roles[0]!;
  if (!roles.includes(defaultRole)) problem(`DEFAULT_ROLE must be one of ROLES (${roles.join(", ")}), got "${defaultRole}"`);
  const adminRoles = list(env, "ADMIN_ROLES", [highest]);
  for (const role of adminRoles) {
    if (!roles.includes(role)) problem(`ADMIN_ROLES entries must be among ROLES (${roles.join(", ")}), got "${role}"`);
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
      problem(
        `SERVICE_KEYS entries are name:key pairs (billing:<32+ characters>); entry ${index + 1} has no valid name ` +
          "(a lower-case letter, then up to 62 lower-case letters, digits or hyphens). Nameless keys are no longer accepted: prefix each with a name",
      );
    }
    if (key.length < 32) problem(`SERVICE_KEYS: the key of "${name}" must be at least 32 characters`);
    return { name, key };
  });
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const { name, key } of entries) {
    if (names.has(name)) problem(`SERVICE_KEYS names "${name}" twice`);
    if (keys.has(key)) problem(`SERVICE_KEYS: "${name}" repeats another entry's key`);
    names.add(name);
    keys.add(key);
  }
  return entries;
}

/** Whether `host` is `rpId` or a subdomain of it (WebAuthn: the RP ID is a registrable suffix of the origin's host). */
function withinRpId(host: string, rpId: string): boolean {
  return host === rpId || host.endsWith(`.${rpId}`);
}

/** Hosts browsers treat as a secure context over plain http (WebAuthn needs one). */
const isLocalhost = (host: string) => host === "localhost" || host.endsWith(".localhost");

/**
 * Passkeys. Defaults follow PUBLIC_URL (its host is the RP ID, its origin the one origin); without
 * it, or when its host is an IP address (never an RP ID), localhost and the gateway's own
 * http://localhost:<HTTP_PORT>, which browsers treat as a secure context.
 */
function loadWebAuthnConfig(env: Env, publicUrl: string | undefined, httpPort: number): WebAuthnConfig {
  const publicHost = publicUrl === undefined ? undefined : new URL(publicUrl).hostname;
  const named = publicHost !== undefined && isIP(publicHost.replace(/^\[|\]$/g, "")) === 0;
  const rpId = (env.WEBAUTHN_RP_ID ?? "").trim().toLowerCase() || (named ? publicHost : "localhost");
  if (isIP(rpId) !== 0 || !HOSTNAME.test(rpId) || /(^|\.)\d+$/.test(rpId)) {
    throw new ConfigError(`WEBAUTHN_RP_ID must be a domain name such as example.com (not an IP address, no scheme or port), got "${rpId}"`);
  }
  const fallbackOrigin = named && withinRpId(publicHost, rpId) ? publicUrl! : `http://localhost:${httpPort}`;
  const origins = list(env, "WEBAUTHN_ORIGINS", [fallbackOrigin]).map((raw) => {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    if (!url || !["http:", "https:"].includes(url.protocol) || url.origin !== raw.replace(/\/$/, "")) {
      throw new ConfigError(`WEBAUTHN_ORIGINS entries must be origins like https://id.example.com, got "${raw}"`);
    }
    if (!withinRpId(url.hostname, rpId)) {
      throw new ConfigError(`WEBAUTHN_ORIGINS entry ${url.origin} is not on WEBAUTHN_RP_ID ${rpId} (its host must be ${rpId} or a subdomain)`);
    }
    if (url.protocol === "http:" && !isLocalhost(url.hostname)) {
      throw new ConfigError(`WEBAUTHN_ORIGINS entry ${url.origin} must be https (browsers offer passkeys over http only on localhost)`);
    }
    return url.origin;
  });
  return {
    rpId,
    rpName: env.WEBAUTHN_RP_NAME || env.TOTP_ISSUER || "grpc-identity",
    origins,
    challengeTtlSec: int(env, "WEBAUTHN_CHALLENGE_TTL_SECONDS", 300, 30, 900),
  };
}

export interface OidcProviderConfig {
  /** Identifier in URLs, requests and stored identities: [a-z0-9-], at most 32 characters. */
  readonly id: string;
  /** The button's label ("Sign in with <name>"). */
  readonly name: string;
  /** The issuer URL; its /.well-known/openid-configuration is read on first use. */
  readonly issuer: string;
  readonly clientId: string;
  /** Empty for a public client (PKCE only). */
  readonly clientSecret: string;
  /** Space-separated; "openid email profile" by default. */
  readonly scopes: string;
}

export interface FederationConfig {
  /** OIDC_PROVIDERS (or the file OIDC_PROVIDERS_FILE names), in order; empty turns federation off. */
  readonly providers: readonly OidcProviderConfig[];
  /**
   * Where a provider may send the browser back: any URL on `allowedOrigin` (PUBLIC_URL's origin)
   * or exactly one of `redirectUris` (OIDC_REDIRECT_URIS). Anything else would hand the code to
   * whoever chose the URI (an open redirect is an account takeover here).
   */
  readonly allowedOrigin: string | undefined;
  readonly redirectUris: readonly string[];
  /** FEDERATION_STATE_TTL_SECONDS: how long a started sign-in may take at the provider. */
  readonly stateTtlSec: number;
  /** FEDERATION_MAX_STARTS_PER_IP_PER_HOUR: started sign-ins and links per client address. */
  readonly maxStartsPerIpPerHour: number;
}

const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/** An https URL (http only outside production or on a loopback host), or a ConfigError naming `what`. */
function federationUrl(raw: unknown, what: string, production: boolean): URL {
  let url: URL | undefined;
  try {
    url = typeof raw === "string" ? new URL(raw) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || !["http:", "https:"].includes(url.protocol) || url.username !== "" || url.hash !== "") {
    throw new ConfigError(`${what} must be an https URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol === "http:" && production && !LOOPBACK_HOSTS.includes(url.hostname)) {
    throw new ConfigError(`${what} must use https:// when NODE_ENV=production (http only on localhost / 127.0.0.1), got "${String(raw)}"`);
  }
  return url;
}

/** OIDC_PROVIDERS / OIDC_PROVIDERS_FILE, OIDC_REDIRECT_URIS, FEDERATION_STATE_TTL_SECONDS. */
function loadFederationConfig(env: Env, production: boolean, publicUrl: string | undefined): FederationConfig {
  if (env.OIDC_PROVIDERS && env.OIDC_PROVIDERS_FILE) throw new ConfigError("set OIDC_PROVIDERS or OIDC_PROVIDERS_FILE, not both");
  let source = "OIDC_PROVIDERS";
  let text = env.OIDC_PROVIDERS ?? "";
  const file = readableFile(env, "OIDC_PROVIDERS_FILE");
  if (file) {
    source = "OIDC_PROVIDERS_FILE";
    text = readFileSync(file, "utf8");
  }
  let parsed: unknown = [];
  if (text.trim() !== "") {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${source} must be a JSON array of providers: ${(err as Error).message}`);
    }
  }
  if (!Array.isArray(parsed)) throw new ConfigError(`${source} must be a JSON array of providers`);
  const providers: OidcProviderConfig[] = [];
  for (const [i, entry] of parsed.entries()) {
    const at = `${source}[${i}]`;
    if (typeof entry !== "object" || entry === null) throw new ConfigError(`${at} must be an object`);
    const e = entry as Record<string, unknown>;
    const text = (key: string, required: boolean): string => {
      const value = e[key];
      if (value === undefined && !required) return "";
      if (typeof value !== "string" || (required && value.trim() === "")) throw new ConfigError(`${at}.${key} must be a non-empty string`);
      return value.trim();
    };
    const id = text("id", true);
    if (!/^[a-z0-9-]{1,32}$/.test(id)) throw new ConfigError(`${at}.id must be 1 to 32 characters of a-z, 0-9 and -, got "${id}"`);
    if (providers.some((p) => p.id === id)) throw new ConfigError(`${at}.id "${id}" is used twice`);
    federationUrl(e.issuer, `${at}.issuer`, production);
    let clientSecret = text("client_secret", false);
    const secretFile = text("client_secret_file", false);
    if (clientSecret !== "" && secretFile !== "") throw new ConfigError(`${at}: set client_secret or client_secret_file, not both`);
    if (secretFile !== "") {
      try {
        clientSecret = readFileSync(path.resolve(secretFile), "utf8").trim();
      } catch {
        throw new ConfigError(`${at}.client_secret_file must name a readable file, got "${secretFile}"`);
      }
    }
    const scopes = text("scopes", false) || "openid email profile";
    if (!scopes.split(/\s+/).includes("openid")) throw new ConfigError(`${at}.scopes must include openid, got "${scopes}"`);
    // The URL as given, without a trailing slash added by URL (issuers are compared exactly).
    providers.push({ id, name: text("name", true), issuer: String(e.issuer), clientId: text("client_id", true), clientSecret, scopes });
  }
  const redirectUris = list(env, "OIDC_REDIRECT_URIS", []).map((raw) => {
    const url = federationUrl(raw, "OIDC_REDIRECT_URIS entries", production);
    if (url.search !== "") throw new ConfigError(`OIDC_REDIRECT_URIS entries may not have a query, got "${raw}"`);
    return url.href;
  });
  return {
    providers,
    allowedOrigin: publicUrl,
    redirectUris,
    stateTtlSec: int(env, "FEDERATION_STATE_TTL_SECONDS", 600, 60, 3600),
    maxStartsPerIpPerHour: int(env, "FEDERATION_MAX_STARTS_PER_IP_PER_HOUR", 100, 1, 1_000_000),
  };
}

/**
 * Reads and validates the whole configuration; throws one ConfigError listing every error found
 * (its `errors`), each naming its variable.
 */
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
  const outer = pending;
  pending = [];
  try {
    const config = readConfig(env);
    if (config.production) requireForProduction(env, config);
    if (pending.length > 0) throw new ConfigError(pending.join("\n"), pending);
    return config;
  } catch (err) {
    // A section that still throws (rather than calling problem) adds its error to the others.
    if (err instanceof ConfigError && err.errors !== pending) {
      const errors = [...pending, ...err.errors];
      throw new ConfigError(errors.join("\n"), errors);
    }
    throw err;
  } finally {
    pending = outer;
  }
}

/**
 * Production starts only when told where everything is: an embedded database, a localhost issuer
 * in every token or a key-encryption key generated into a data directory would each start
 * silently and be wrong.
 */
function requireForProduction(env: Env, config: Config): void {
  if (!config.databaseUrl) problem("DATABASE_URL is required when NODE_ENV=production (the embedded PostgreSQL is for development)");
  if (!env.TOKEN_ISSUER) problem("TOKEN_ISSUER is required when NODE_ENV=production (it is the iss of every token, e.g. https://id.example.com)");
}

function readConfig(env: Env): Config {
  const production = env.NODE_ENV === "production";
  const httpPort = int(env, "HTTP_PORT", 8080, 0, 65535);
  const serviceKeys = loadServiceKeys(withSecret(env, "SERVICE_KEYS"));
  const corsOrigins = list(env, "CORS_ORIGINS", production ? [] : [`http://localhost:${httpPort}`, `http://127.0.0.1:${httpPort}`]);
  for (const origin of corsOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      problem(`CORS_ORIGINS entries must be origins like https://app.example.com, got "${origin}"`);
    }
  }
  const trustedProxies = list(env, "TRUSTED_PROXIES", []);
  try {
    proxyaddr.compile(trustedProxies);
  } catch (err) {
    problem(`TRUSTED_PROXIES must list IP addresses, CIDRs (10.0.0.0/8) or loopback, linklocal, uniquelocal: ${(err as Error).message}`);
  }
  const publicUrl = publicOrigin(env.PUBLIC_URL);
  const keyEncryptionKeys = loadKeyring(env);
  const config: Config = {
    production,
    bindHost: listenHost(env, "BIND_HOST", "0.0.0.0"),
    grpcPort: int(env, "GRPC_PORT", 50051, 0, 65535),
    httpPort,
    metricsHost: listenHost(env, "METRICS_HOST", "127.0.0.1"),
    metricsPort: int(env, "METRICS_PORT", 9464, 0, 65535),
    databaseUrl: secret(env, "DATABASE_URL"),
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
    keyEncryptionKeys,
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
    tracing: loadTracingConfig(env),
    logFormat: env.LOG_FORMAT ? oneOf(env, "LOG_FORMAT", "json", ["json", "pretty"] as const) : undefined,
    webauthn: loadWebAuthnConfig(env, publicUrl, httpPort),
    federation: loadFederationConfig(env, production, publicUrl),
    grpcConnectionAge: loadGrpcConnectionAge(env),
    database: loadDatabaseBounds(env),
  };
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(config.logLevel)) {
    problem(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent`);
  }
  if (production) {
    if (!config.keyEncryptionKeys) problem("KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEYS) is required when NODE_ENV=production");
    if (config.serviceKeys.length === 0) problem("SERVICE_KEYS is required when NODE_ENV=production");
    if (config.corsOrigins.includes("*")) problem("CORS_ORIGINS may not be * when NODE_ENV=production");
    // Without it the gateway would take its own origin from the Host header (DNS rebinding).
    if (!config.publicUrl) problem("PUBLIC_URL is required when NODE_ENV=production (e.g. https://id.example.com)");
  }
  const ports = [["GRPC_PORT", config.grpcPort], ["HTTP_PORT", config.httpPort], ["METRICS_PORT", config.metricsPort]] as const;
  for (const [i, [name, port]] of ports.entries()) {
    const other = ports.slice(i + 1).find(([, p]) => p === port && p !== 0);
    if (other) problem(`${name} and ${other[0]} must differ, both are ${port}`);
  }
  if (config.sessionAbsoluteTtlSec < config.accessTokenTtlSec) {
    problem("SESSION_ABSOLUTE_TTL_SECONDS must be at least ACCESS_TOKEN_TTL_SECONDS");
  }
  return config;
}

/** Trace export, from the OpenTelemetry SDK's standard variables (see README, Tracing). */
export interface TracingConfig {
  /** Where spans are POSTed (OTLP/HTTP, JSON bodies). */
  readonly tracesUrl: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** OTEL_BSP_SCHEDULE_DELAY: how long ended spans wait to be exported in one batch. */
  readonly scheduleDelayMs: number;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /** OTEL_TRACES_SAMPLER, split: the root decision and whether a caller's sampled flag is followed. */
  readonly sampler: { readonly root: "always_on" | "always_off" | "traceidratio"; readonly parentBased: boolean; readonly ratio: number };
}

const OTEL_SAMPLERS = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"] as const;

/** OTEL_*_HEADERS and OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value, values percent-encoded. */
function otelPairs(env: Env, name: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const entry of list(env, name, [])) {
    const at = entry.indexOf("=");
    if (at < 1) throw new ConfigError(`${name} entries must look like key=value, got an entry without "="`);
    try {
      pairs[entry.slice(0, at).trim()] = decodeURIComponent(entry.slice(at + 1).trim());
    } catch {
      throw new ConfigError(`${name}: the value of ${entry.slice(0, at).trim()} is not validly percent-encoded`);
    }
  }
  return pairs;
}

/**
 * Tracing is on when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, used as it is,
 * or OTEL_EXPORTER_OTLP_ENDPOINT, to which /v1/traces is appended, as the specification says)
 * and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none turns it off. Messages never
 * quote a header (they carry credentials).
 */
function loadTracingConfig(env: Env): TracingConfig | undefined {
  if (bool(env, "OTEL_SDK_DISABLED", false)) return undefined;
  const exporter = oneOf(env, "OTEL_TRACES_EXPORTER", "otlp", ["otlp", "none"] as const);
  if (exporter === "none") return undefined;
  const signal = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || undefined;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
  if (signal === undefined && base === undefined) return undefined;
  const name = signal !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
  const tracesUrl = signal ?? `${base!.replace(/\/+$/, "")}/v1/traces`;
  let url: URL | undefined;
  try {
    url = new URL(tracesUrl);
  } catch {
    url = undefined;
  }
  if (!url || !["http:", "https:"].includes(url.protocol)) throw new ConfigError(`${name} must be an http:// or https:// URL (OTLP/HTTP, e.g. http://collector:4318)`);
  // This build's exporter (@opentelemetry/exporter-trace-otlp-http) sends JSON; every OTLP/HTTP
  // receiver takes it on the same port. Asking for another protocol is refused, not ignored.
  const protocolName = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = env[protocolName];
  if (protocol && protocol !== "http/json") {
    throw new ConfigError(`${protocolName}=${protocol} is not supported: this service exports OTLP/HTTP with JSON bodies (http/json), which OTLP/HTTP receivers accept on the same port`);
  }
  const samplerName = oneOf(env, "OTEL_TRACES_SAMPLER", "parentbased_always_on", OTEL_SAMPLERS);
  const root = samplerName.replace(/^parentbased_/, "") as TracingConfig["sampler"]["root"];
  const resourceAttributes = otelPairs(env, "OTEL_RESOURCE_ATTRIBUTES");
  return {
    tracesUrl,
    headers: { ...otelPairs(env, "OTEL_EXPORTER_OTLP_HEADERS"), ...otelPairs(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS") },
    timeoutMs: int(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", int(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, 1, 600_000), 1, 600_000),
    scheduleDelayMs: int(env, "OTEL_BSP_SCHEDULE_DELAY", 5_000, 1, 600_000),
    serviceName: env.OTEL_SERVICE_NAME || resourceAttributes["service.name"] || "identity",
    resourceAttributes,
    sampler: { root, parentBased: samplerName.startsWith("parentbased_"), ratio: root === "traceidratio" ? fraction(env, "OTEL_TRACES_SAMPLER_ARG", 1) : 1 },
  };
}
