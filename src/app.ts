// The composition root: builds every domain module from its dependencies. No DI container.
import type { DataSource } from "typeorm";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { createAccounts } from "./domain/accounts.js";
import { createAuditLog } from "./domain/audit.js";
import { createCallers } from "./domain/callers.js";
import { systemClock, type Clock } from "./domain/clock.js";
import { createPasswordHasher } from "./domain/passwords.js";
import { createRevocations } from "./domain/revocation.js";
import { createSessionTokens } from "./domain/session-tokens.js";
import { createSessions } from "./domain/sessions.js";
import { createSigningKeys } from "./domain/signing-keys.js";
import { createAccessTokens } from "./domain/tokens.js";
import { createServers, type Servers } from "./server/servers.js";
import type { ServiceDeps } from "./services/routes.js";
import { fileURLToPath } from "node:url";

export const descriptorSetPath = fileURLToPath(new URL("../gen/descriptor.binpb", import.meta.url));

export interface AppOptions {
  readonly config: Config;
  readonly db: DataSource;
  readonly logger: Logger;
  readonly kek: Buffer;
  readonly clock?: Clock;
}

export interface App {
  readonly services: ServiceDeps;
  readonly servers: Servers;
  /** Stops background work (the revocation listener); the servers are closed separately. */
  stop(): Promise<void>;
}

export async function createApp({ config, db, logger, kek, clock = systemClock }: AppOptions): Promise<App> {
  const audit = createAuditLog(db);
  const passwords = createPasswordHasher(config.argon2, config.hashing);
  const signingKeys = createSigningKeys(db, kek, clock);
  await signingKeys.init();
  const accessTokens = createAccessTokens(signingKeys, config, clock);
  const revocations = createRevocations(db, clock, logger, {
    databaseUrl: (db.options as { url: string }).url,
    accessTokenTtlSec: config.accessTokenTtlSec,
  });
  await revocations.start();
  const sessions = createSessions(db, audit, clock, config, revocations);
  const sessionTokens = createSessionTokens(db, sessions, accessTokens);
  const callers = createCallers(accessTokens, revocations, {
    serviceKeys: config.serviceKeys,
    allowLoopbackWithoutKey: !config.production,
  });
  const accounts = createAccounts({ db, clock, passwords, sessions, sessionTokens, audit, revocations });

  const services: ServiceDeps = {
    accounts,
    callers,
    sessions,
    audit,
    accessTokens,
    sessionTokens,
    signingKeys,
    logger,
    maxDeadlineMs: config.maxDeadlineMs,
  };
  const servers = createServers({
    services,
    signingKeys,
    ready: async () => {
      await db.query("SELECT 1");
      return true;
    },
    corsOrigins: config.corsOrigins,
    maxMessageBytes: config.maxMessageBytes,
    maxDeadlineMs: config.maxDeadlineMs,
    descriptorSetPath,
  });
  return { services, servers, stop: () => revocations.stop() };
}
