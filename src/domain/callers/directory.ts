// Every service account, its keys and its certificate identities, held in memory so that naming
// the caller of an RPC costs no database query: service accounts are few. Loaded at start,
// reloaded when the revocation feed says `services` changed (the ServiceAccounts migration's
// triggers) and whenever the revocation module reloads (every 30 s while it listens, every 500 ms
// while the LISTEN connection is down), so a lost notification still converges within about a
// second. A failed reload keeps the last directory: VerifyToken goes on while PostgreSQL is down.
//
// A presented key is checked once (prefix -> entry -> HMAC, constant-time compare -> expiry,
// revocation, status) and the answer kept per presented string until the next reload, so a warm
// call costs one Map lookup. Unknown and malformed keys cost no query and are not kept.
import { timingSafeEqual } from "node:crypto";
import type { Logger } from "../../logger.js";
import type { RevocationFeed, ServiceAccountsSnapshot, Store } from "../../store/index.js";
import type { Clock } from "../clock.js";
import { AppError } from "../errors.js";
import { PERMISSIONS } from "./permissions.js";
import { serviceKeyPrefix, type ServiceKeyHasher } from "./service-keys.js";
import { normalizeSubject } from "./identities.js";
import type { ServiceCaller } from "./callers.js";

/** A bootstrap caller from SERVICE_KEYS: every permission, no audiences. */
export interface BootstrapKey {
  readonly name: string;
  readonly key: string;
}

/** What identifies the service behind a verified client certificate. */
export interface CertificateIdentity {
  readonly subject: string;
  readonly uris: readonly string[];
  /** SHA-256 of the certificate: when given, the answer is kept for it until the next reload. */
  readonly fingerprint256?: string;
}

export interface ServiceDirectory {
  /** The caller a presented key names; SERVICE_KEY_INVALID when none (unknown, revoked, expired, disabled). */
  byKey(presented: string): ServiceCaller;
  /**
   * The caller a verified client certificate names (a registered SPIFFE ID among its URI SANs, or
   * its subject); undefined when it names none; SERVICE_KEY_INVALID when its account is disabled.
   */
  byCertificate(certificate: CertificateIdentity): ServiceCaller | undefined;
  /** Reloads from the database now (after a change this instance made); coalesces concurrent calls. */
  reload(): Promise<void>;
  /** `feed`, with this directory following it: reloaded on `services` events and on each catch-up. */
  follow(feed: RevocationFeed): RevocationFeed;
  /** Names of the accounts in the database, as last loaded. */
  readonly names: ReadonlySet<string>;
  /** Writes pending last-used times and stops the timer. */
  stop(): Promise<void>;
}

export type DirectoryDb = Pick<Store, "direct" | "transaction" | "serviceAccounts">;

export interface DirectorySettings {
  readonly bootstrap: readonly BootstrapKey[];
  readonly hash: ServiceKeyHasher;
  /** Upper bound of remembered resolutions (cleared when reached). */
  readonly cacheSize?: number;
  /** How often last-used times are written (each key at most once per LAST_USED_MS anyway). */
  readonly flushMs?: number;
}

/** last_used_at is written at most this often per key. */
const LAST_USED_MS = 60_000;

interface KeyEntry {
  readonly id: string;
  readonly hash: Buffer;
  readonly expiresAtMs: number;
  readonly caller: ServiceCaller;
  readonly active: boolean;
}

interface Resolved {
  readonly caller: ServiceCaller;
  /** Infinity when the key never expires (bootstrap keys, keys without expiry). */
  readonly expiresAtMs: number;
  /** undefined for bootstrap keys (nothing to record). */
  readonly keyId: string | undefined;
}

interface Loaded {
  readonly keys: ReadonlyMap<string, KeyEntry>;
  readonly certificates: ReadonlyMap<string, { readonly caller: ServiceCaller; readonly active: boolean }>;
  readonly names: ReadonlySet<string>;
}

const invalid = (detail: string) => new AppError("SERVICE_KEY_INVALID", detail);

function build(snapshot: ServiceAccountsSnapshot): Loaded {
  const callers = new Map<string, { caller: ServiceCaller; active: boolean }>();
  for (const account of snapshot.accounts) {
    callers.set(account.id, {
      caller: Object.freeze({
        name: account.name,
        permissions: new Set(account.permissions),
        audiences: Object.freeze([...account.audiences]),
        via: "key" as const,
      }),
      active: account.status === "active",
    });
  }
  const keys = new Map<string, KeyEntry>();
  for (const key of snapshot.keys) {
    const owner = callers.get(key.accountId);
    if (!owner || key.revokedAt !== null) continue;
    keys.set(key.prefix, { id: key.id, hash: key.hash, expiresAtMs: key.expiresAt?.getTime() ?? Infinity, caller: owner.caller, active: owner.active });
  }
  const certificates = new Map<string, { caller: ServiceCaller; active: boolean }>();
  for (const certificate of snapshot.certificates) {
    const owner = callers.get(certificate.accountId);
    if (!owner) continue;
    certificates.set(`${certificate.kind}:${certificate.value}`, { caller: { ...owner.caller, via: "certificate" }, active: owner.active });
  }
  return { keys, certificates, names: new Set(snapshot.accounts.map((a) => a.name)) };
}

export function createServiceDirectory(db: DirectoryDb, clock: Clock, logger: Logger, settings: DirectorySettings): ServiceDirectory {
  const cacheSize = settings.cacheSize ?? 10_000;
  const bootstrap = settings.bootstrap.map(({ name, key }) => ({
    key: Buffer.from(key),
    caller: Object.freeze({ name, permissions: new Set<string>(PERMISSIONS), audiences: Object.freeze([]) as readonly string[], via: "bootstrap" as const }),
  }));
  let loaded: Loaded = { keys: new Map(), certificates: new Map(), names: new Set() };
  const resolved = new Map<string, Resolved>();
  // Certificate fingerprint -> the account it names (null: none), until the next reload.
  const byFingerprint = new Map<string, { readonly caller: ServiceCaller; readonly active: boolean } | null>();
  // Survives reloads: the last time each key's use was (or will be) written.
  const touched = new Map<string, number>();
  const pendingTouches = new Set<string>();

  function resolveBootstrap(presented: string): Resolved | undefined {
    // Compare with every key so timing does not tell which one nearly matched; a key's length is
    // not the secret.
    const bytes = Buffer.from(presented);
    let found: ServiceCaller | undefined;
    for (const entry of bootstrap) {
      if (entry.key.length === bytes.length && timingSafeEqual(entry.key, bytes)) found ??= entry.caller;
    }
    return found && { caller: found, expiresAtMs: Infinity, keyId: undefined };
  }

  function resolveStored(presented: string, prefix: string): Resolved {
    const entry = loaded.keys.get(prefix);
    if (!entry) throw invalid(`unknown service key prefix ${prefix}`);
    if (!settings.hash.matches(presented, entry.hash)) throw invalid(`wrong secret for service key ${prefix}`);
    if (entry.expiresAtMs <= clock.now().getTime()) throw invalid(`service key ${prefix} expired`);
    if (!entry.active) throw invalid(`service account ${entry.caller.name} is disabled`);
    return { caller: entry.caller, expiresAtMs: entry.expiresAtMs, keyId: entry.id };
  }

  function noteUse(keyId: string): void {
    const now = Date.now();
    const last = touched.get(keyId);
    if (last !== undefined && now - last < LAST_USED_MS) return;
    touched.set(keyId, now);
    pendingTouches.add(keyId);
  }

  async function flushTouches(): Promise<void> {
    if (pendingTouches.size === 0) return;
    const ids = [...pendingTouches];
    pendingTouches.clear();
    // Best effort: a lost write only makes last_used_at older than it should be.
    await db.serviceAccounts.touchKeys(db.direct, ids, clock.now()).catch((err: unknown) => logger.warn({ err }, "could not record service key use"));
  }
  const flushTimer = setInterval(() => void flushTouches(), settings.flushMs ?? 10_000);
  flushTimer.unref();

  let running: Promise<void> | undefined;
  let again = false;
  const clashes = new Set<string>();
  async function load(): Promise<void> {
    const snapshot = await db.transaction((tx) => db.serviceAccounts.snapshot(tx));
    const next = build(snapshot);
    // The start refuses a clash (app.ts); one made later (an account created elsewhere with a
    // bootstrap name) is reported once: the bootstrap key keeps working, with every permission.
    for (const { caller } of bootstrap) {
      if (next.names.has(caller.name) && !clashes.has(caller.name)) {
        clashes.add(caller.name);
        logger.warn({ name: caller.name }, "a SERVICE_KEYS name is also a service account; its bootstrap key keeps every permission");
      }
    }
    loaded = next;
    resolved.clear();
    byFingerprint.clear();
  }
  function reload(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  }
  const reloadQuietly = () => {
    reload().catch((err: unknown) => logger.warn({ err }, "service account reload failed; keeping the last directory"));
  };

  return {
    byKey(presented) {
      let found = resolved.get(presented);
      if (found === undefined) {
        const prefix = serviceKeyPrefix(presented);
        found = (prefix === undefined ? undefined : loaded.keys.has(prefix) ? resolveStored(presented, prefix) : undefined) ?? resolveBootstrap(presented);
        if (!found) throw invalid(prefix === undefined ? "malformed or unknown service key" : `unknown service key prefix ${prefix}`);
        if (resolved.size >= cacheSize) resolved.clear();
        resolved.set(presented, found);
      } else if (found.expiresAtMs !== Infinity && found.expiresAtMs <= clock.now().getTime()) {
        resolved.delete(presented);
        throw invalid("service key expired");
      }
      if (found.keyId !== undefined) noteUse(found.keyId);
      return found.caller;
    },
    byCertificate({ subject, uris, fingerprint256 }) {
      const { certificates } = loaded;
      if (certificates.size === 0) return undefined;
      let entry = fingerprint256 === undefined ? undefined : byFingerprint.get(fingerprint256);
      if (entry === undefined) {
        for (const uri of uris) entry ??= certificates.get(`spiffe:${uri}`);
        const normalized = entry === undefined ? normalizeSubject(subject) : undefined;
        if (normalized !== undefined) entry = certificates.get(`subject:${normalized}`);
        entry ??= null;
        if (fingerprint256 !== undefined) {
          if (byFingerprint.size >= cacheSize) byFingerprint.clear();
          byFingerprint.set(fingerprint256, entry);
        }
      }
      if (entry === null) return undefined;
      if (!entry.active) throw invalid(`service account ${entry.caller.name} is disabled`);
      return entry.caller;
    },
    reload,
    follow(feed) {
      return {
        recent(tx, since) {
          reloadQuietly();
          return feed.recent(tx, since);
        },
        listen(handlers) {
          return feed.listen({ ...handlers, onServicesChanged: reloadQuietly });
        },
      };
    },
    get names() {
      return loaded.names;
    },
    async stop() {
      clearInterval(flushTimer);
      await flushTouches();
    },
  };
}
