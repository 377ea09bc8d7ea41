// The composition root: builds every domain module from its dependencies. No DI container.
import { createStore, type Database } from "./store/index.js";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { createAccounts } from "./domain/accounts/accounts.js";
import { createContactVerification } from "./domain/accounts/contact-verification.js";
import { createContactChange } from "./domain/accounts/contact-change.js";
import { createProfiles } from "./domain/accounts/profile.js";
import { createReauthentication } from "./domain/accounts/reauthentication.js";
import { createOtp } from "./domain/otp/otp.js";
import { createOtpCodes } from "./domain/otp/codes.js";
import { createOtpLogin } from "./domain/otp/login.js";
import { createPasswordReset } from "./domain/accounts/password-reset.js";
import { createRateLimits } from "./domain/limits/rate-limits.js";
import { createOtpSenders } from "./delivery/index.js";
import { createDevOutbox, type DevOutbox } from "./delivery/dev-outbox.js";
import { createAuditLog } from "./domain/audit/audit.js";
import { createCallers } from "./domain/callers/callers.js";
import { createServiceDirectory } from "./domain/callers/directory.js";
import { createServiceAccounts, type ServiceAccounts } from "./domain/callers/service-accounts.js";
import type { Keyring } from "./domain/crypto.js";
import { loadHmacKeys } from "./domain/secrets/hmac-keys.js";
import { createServiceTokens } from "./domain/tokens/service-tokens.js";
import { createRevocationStream } from "./domain/tokens/revocation-stream.js";
import { systemClock, type Clock } from "./domain/clock.js";
import { createMfa } from "./domain/mfa/mfa.js";
import { createPasskeys } from "./domain/passkeys/passkeys.js";
import { createPasskeyLogin } from "./domain/passkeys/passkey-login.js";
import { createAdministration, type Administration } from "./domain/admin/admin.js";
import { createRoles } from "./domain/admin/roles.js";
import { createFederation } from "./domain/federation/federation.js";
import { createOidcProviders } from "./domain/federation/providers.js";
import { createCredentialChecks } from "./domain/accounts/credential-checks.js";
import { createSignIn } from "./domain/sessions/sign-in.js";
import { createPasswordHasher, inlineArgon2, type Argon2Engine } from "./domain/accounts/passwords.js";
import { createArgon2Process } from "./hashing/argon2-process.js";
import { createRevocations } from "./domain/tokens/revocation.js";
import { createSessionTokens } from "./domain/sessions/session-tokens.js";
import { createSessions } from "./domain/sessions/sessions.js";
import { createSigningKeys } from "./domain/tokens/signing-keys.js";
import { createAccessTokens } from "./domain/tokens/access-tokens.js";
import { createServers, type Servers } from "./server/servers.js";
import { createTlsFiles } from "./server/tls.js";
import { serverMetadata } from "./server/well-known.js";
import { createReadiness } from "./server/readiness.js";
import { buildInfo, createMetrics, registerStallMetrics, type Metrics } from "./metrics.js";
import type { ServiceDeps } from "./services/routes.js";
import { startTracing, type Tracing } from "./tracing.js";
import { traceQueries } from "./db/tracing.js";
import { fileURLToPath } from "node:url";

export const descriptorSetPath = fileURLToPath(new URL("../gen/descriptor.binpb", import.meta.url));
/** The bundled browser app, dist/web/: beside dist/src/ in the build, in the checkout's dist/ from source (tests). */
export const webAppDir = fileURLToPath(new URL(import.meta.url.includes("/dist/src/") ? "../web/" : "../dist/web/", import.meta.url));

export interface AppOptions {
  readonly config: Config;
  readonly db: Database;
  readonly logger: Logger;
  /** The key-encryption keyring (database.ts builds it from the configuration). */
  readonly kek: Keyring;
  readonly clock?: Clock;
  /**
   * Where the console provider also keeps what it "sent" (outside production). Tests pass their
   * own to read one-time codes; left out, a bounded one backs the web app's GET /dev/outbox.
   */
  readonly outbox?: DevOutbox;
}

export interface App {
  readonly services: ServiceDeps;
  /** Service-account management (the CLI's domain; the admin API will call it too). */
  readonly serviceAccounts: ServiceAccounts;
  readonly servers: Servers;
  readonly metrics: Metrics;
  /** Account administration (AdminService and the admin command line, src/admin-cli.ts). */
  readonly administration: Administration;
  /** OpenTelemetry, when OTEL_* configures it (config.tracing); else undefined. */
  readonly tracing: Tracing | undefined;
  /** Stops background work (the revocation listener); the servers are closed separately. */
  stop(): Promise<void>;
}

export async function createApp({ config, db, logger, kek, clock = systemClock, outbox }: AppOptions): Promise<App> {
  // Every query of the service goes through the store (src/store/), built once here.
  const store = createStore(db, { defaultRole: config.roles.defaultRole });
  // The gauges read parts built below, first at the first scrape (after createApp returns).
  const metrics = createMetrics({
    pool: () => store.health.pool(),
    revocationListenerUp: () => revocations.listening,
    hashingQueueDepth: () => passwords.queueDepth(),
    signingKeyAgeSeconds: () => signingKeys.currentAgeSeconds(),
  }, buildInfo());
  // Tracing (off unless OTEL_* configures an endpoint): a span per RPC and per SQL statement.
  const tracing = config.tracing && (await startTracing(config.tracing, buildInfo().version));
  if (tracing) traceQueries(db, tracing);
  const audit = createAuditLog(store, clock);
  // Service accounts are held in memory (loaded first: a SERVICE_KEYS name clash stops the start
  // before anything else runs); the directory follows the revocation feed, so it reloads
  // on the same notifications and the same fallback cadence (directory.ts).
  // Random, stored sealed; created by the first start, before any signing key of a new installation.
  const hmacKeys = await loadHmacKeys(store, kek, clock, logger);
  const hashServiceKey = hmacKeys["service-keys"];
  const directory = createServiceDirectory(store, clock, logger, { bootstrap: config.serviceKeys, hash: hashServiceKey });
  await directory.reload();
  // Documented precedence is not enough here: the name is what logs, metrics and audit rows say.
  const clash = config.serviceKeys.find(({ name }) => directory.names.has(name));
  if (clash) {
    await directory.stop();
    throw new Error(`SERVICE_KEYS names "${clash.name}", which is also a service account in the database: rename the bootstrap caller`);
  }
  const serviceAccounts = createServiceAccounts({
    db: store, clock, hash: hashServiceKey, bootstrapNames: new Set(config.serviceKeys.map((k) => k.name)), onChanged: () => directory.reload(),
  });
  // Argon2 runs in a process of its own at a lowered priority (argon2-process.ts), started now so
  // that a broken installation stops the start rather than the first login.
  let argon2: Argon2Engine = inlineArgon2;
  if (config.hashing.isolation === "process") {
    const hashing = createArgon2Process({
      threads: config.hashing.maxConcurrent,
      nice: config.hashing.nice,
      onExit: (detail) => logger.error(detail, "password hashing process ended; it is started again on the next hash"),
    });
    await hashing.start();
    argon2 = hashing;
  }
  const passwords = createPasswordHasher(config.argon2, config.hashing, (result) => metrics.passwordHashing.inc({ result }), argon2);
  const signingKeys = createSigningKeys(store, kek, clock, { accessTokenTtlSec: config.accessTokenTtlSec, ...config.keys });
  await signingKeys.init();
  await signingKeys.rotateIfDue();
  signingKeys.startMaintenance(60_000, (err) => logger.warn({ err }, "signing key maintenance failed"));
  const accessTokens = createAccessTokens(signingKeys, config, clock);
  const revocations = createRevocations({ direct: store.direct, revocationFeed: directory.follow(store.revocationFeed) }, clock, logger, { accessTokenTtlSec: config.accessTokenTtlSec, maxStalenessMs: config.database.revocationMaxStalenessMs });
  registerStallMetrics(metrics.registry, { breakerOpen: () => store.health.breakerOpen, revocationAgeMs: () => revocations.ageMs() });
  await revocations.start();
  const sessions = createSessions(store, audit, clock, config, revocations);
  const sessionTokens = createSessionTokens(sessions, accessTokens);
  const callers = createCallers(accessTokens, revocations, directory, { allowLoopbackWithoutKey: !config.production });
  const serviceTokens = createServiceTokens(accessTokens, audit);
  const revocationStream = createRevocationStream(revocations, signingKeys, clock);
  revocationStream.start();
  const limits = createRateLimits(store, clock);
  const checks = createCredentialChecks({ db: store, passwords, limits, audit, loginLimits: config.loginLimits });

  // Development only: the web app shows what the console provider "sent".
  const devOutbox = config.production ? undefined : (outbox ?? createDevOutbox());
  const senders = createOtpSenders(config.otp, logger, devOutbox);
  logger.info({ email: senders.email?.name ?? "disabled", sms: senders.sms?.name ?? "disabled" }, "one-time code delivery");
  const otpCodes = createOtpCodes(store, clock, hmacKeys["otp-codes"], config.otp);
  const otp = createOtp({ db: store, logger, codes: otpCodes, limits, senders, settings: config.otp,
    onBudgetExhausted: (scope, callingCode) => metrics.otpBudgetExhausted.inc({ scope, calling_code: callingCode }) });
  const mfa = createMfa({ db: store, clock, kek, backupCodeHash: hmacKeys["backup-codes"], sessionTokens, audit, checks, settings: config.mfa, otp, otpCodes });
  const signIn = createSignIn(sessionTokens, mfa);
  const accounts = createAccounts({
    db: store, clock, passwords, sessions, sessionTokens, signIn, audit, revocations, limits, checks, signUpLimits: config.signUpLimits, profileRules: config.profile,
    highestRole: config.roles.roles.at(-1)!,
  });
  const passkeys = createPasskeys({ db: store, clock, audit, settings: config.webauthn, reauthMaxAgeSec: config.reauthMaxAgeSec });
  const passkeyLogin = createPasskeyLogin({ db: store, clock, audit, limits, sessionTokens, settings: config.webauthn, loginLimits: config.loginLimits });
  const profiles = createProfiles({ db: store, clock, audit, rules: config.profile });
  const reauthentication = createReauthentication({ db: store, clock, kek, backupCodeHash: hmacKeys["backup-codes"], checks, sessionTokens, audit });
  const otpLogin = createOtpLogin({ db: store, otp, clock, sessions, signIn, audit, revocations, signUpEnabled: config.otp.signUpEnabled });
  const contactVerification = createContactVerification({ db: store, otp, clock, accounts, audit });
  const passwordReset = createPasswordReset({ db: store, otp, clock, passwords, sessions, audit, revocations });
  const contactChange = createContactChange({ db: store, otp, clock, audit, limits, senders, logger, reauthMaxAgeSec: config.reauthMaxAgeSec });
  const roles = createRoles(config.roles);
  const administration = createAdministration({
    db: store, clock, roles, sessions, revocations, audit, senders, logger, restoreDays: config.roles.accountRestoreDays,
  });

  // Sign-in with OpenID Connect providers (issue 17); discovery happens on first use.
  const federation = createFederation({
    db: store, providers: createOidcProviders(config.federation.providers, clock), clock, kek, limits, signIn, audit, profileRules: config.profile,
    settings: { ...config.federation, defaultRole: config.roles.defaultRole, reauthMaxAgeSec: config.reauthMaxAgeSec },
  });

  const services: ServiceDeps = {
    accounts,
    serviceTokens,
    revocationStream,
    clock,
    callers,
    sessions,
    audit,
    accessTokens,
    sessionTokens,
    signingKeys,
    mfa,
    otpLogin,
    contactVerification,
    passwordReset,
    profiles,
    contactChange,
    reauthentication,
    administration,
    passkeys,
    passkeyLogin,
    federation,
    adminAccess: {
      roles,
      maxAuthAgeSec: config.roles.adminMaxAuthAgeSec,
      clock,
      liveRole: async (userId) => (await store.users.findLive(store.direct, userId))?.role,
    },
    logger,
    metrics,
    maxDeadlineMs: config.maxDeadlineMs,
    accessLogSampleRate: config.accessLogSampleRate,
    tracing,
  };
  const servers = createServers({
    services,
    signingKeys,
    readiness: createReadiness(store.health, logger, () => revocations.ageMs()),
    metrics: metrics.registry,
    corsOrigins: config.corsOrigins,
    maxMessageBytes: config.maxMessageBytes,
    maxDeadlineMs: config.maxDeadlineMs,
    descriptorSetPath,
    browserApp: { appDir: webAppDir, publicUrl: config.publicUrl, devOutbox },
    metadata: serverMetadata(config.issuer, config.publicUrl ?? config.issuer),
    logger,
    tls: config.tls && createTlsFiles(config.tls, logger),
    trustedProxies: config.trustedProxies,
    grpcConnectionAge: config.grpcConnectionAge,
  });
  return { services, servers, metrics, serviceAccounts, administration, tracing, stop: async () => {
    revocationStream.stop();
    signingKeys.stop();
    await revocations.stop();
    await directory.stop();
    await argon2.close();
    await tracing?.shutdown();
    await store.health.close();
  } };
}
