// Ed25519 signing keys, kept in PostgreSQL with the private half sealed by the key-encryption
// key. Rotation publishes the next key before it signs (so JWKS caches pick it up first), and
// keeps the previous one in the JWKS until the last token it signed has expired:
//
//   rotate at T:  new key  activates_at = T + publishAhead
//                 old key  retires_at   = T + publishAhead,  expires_at = retires_at + token TTL + skew
//
// Which key signs, and which keys verify, is decided from the clock on every call, so every
// instance switches at the same instant without coordination.
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import type { SigningKeyRow, Store, Tx } from "../../store/index.js";
import type { Clock } from "../clock.js";
import { sealWith, unsealWith, type Keyring } from "../crypto.js";

export const SIGNING_ALG = "EdDSA";
const UNKNOWN_KID_RELOAD_MS = 5_000;
/** Skew allowed between instances' clocks when deciding that an old key's tokens are gone. */
const EXPIRY_MARGIN_SEC = 60;

export interface PublicJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: string;
}

export interface KeySettings {
  readonly accessTokenTtlSec: number;
  /** How long a new key is published before it signs. */
  readonly publishAheadSec: number;
  /** Rotate automatically when the signing key is this old; 0 turns automatic rotation off. */
  readonly rotationIntervalSec: number;
}

export interface SigningKeys {
  /** Creates the first key when the table is empty, then loads the keys. */
  init(): Promise<void>;
  /** Reloads keys from the database (another instance may have rotated). */
  reload(): Promise<void>;
  /** Publishes a new key that signs from now + publishAhead; returns its kid and that instant. */
  rotate(): Promise<{ kid: string; activatesAt: Date }>;
  /** Rotates when the signing key is older than the rotation interval and none is pending. */
  rotateIfDue(): Promise<boolean>;
  current(): { readonly kid: string; readonly privateKey: KeyObject };
  /** Seconds since the current signing key began signing (a metric); undefined when none signs. */
  currentAgeSeconds(): number | undefined;
  /** The public key of `kid`, if it is published. */
  publicKey(kid: string): KeyObject | undefined;
  jwks(): readonly PublicJwk[];
  /** Reloads and rotates in the background every `intervalMs` until stop(). */
  startMaintenance(intervalMs?: number, onError?: (err: unknown) => void): void;
  stop(): void;
}

interface LoadedKey {
  readonly row: SigningKeyRow;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

/** What signing keys need of the store. */
export type SigningKeysDb = Pick<Store, "transaction" | "direct" | "signingKeys">;

export function createSigningKeys(db: SigningKeysDb, kek: Keyring, clock: Clock, settings: KeySettings): SigningKeys {
  let keys: LoadedKey[] = [];
  let lastUnknownReload = 0;
  let timer: NodeJS.Timeout | undefined;

  async function insertKey(tx: Tx, activatesAt: Date): Promise<string> {
    const pair = await generateKeyPair(SIGNING_ALG, { crv: "Ed25519", extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const privateJwk = await exportJWK(pair.privateKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    await db.signingKeys.insert(tx, {
      kid,
      alg: SIGNING_ALG,
      publicJwk: { kty: publicJwk.kty!, crv: publicJwk.crv!, x: publicJwk.x! },
      privateKeySealed: sealWith(kek, Buffer.from(JSON.stringify(privateJwk)), kid),
      activatesAt,
      retiresAt: null,
      expiresAt: null,
    });
    return kid;
  }

  async function reload(): Promise<void> {
    const rows = await db.signingKeys.listPublished(db.direct, clock.now());
    const known = new Map(keys.map((k) => [k.row.kid, k]));
    keys = rows.map((row) => {
      const previous = known.get(row.kid);
      return {
        row,
        publicKey: previous?.publicKey ?? createPublicKey({ key: row.publicJwk as JsonWebKey, format: "jwk" }),
        privateKey: previous?.privateKey ?? createPrivateKey({ key: JSON.parse(unsealWith(kek, row.privateKeySealed, row.kid).plaintext.toString()), format: "jwk" }),
      };
    });
  }

  const published = (key: LoadedKey, now: Date) => key.row.expiresAt === null || key.row.expiresAt > now;

  async function locked<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return db.transaction(async (tx) => {
      // One instance at a time creates or rotates keys.
      await db.signingKeys.lock(tx);
      return work(tx);
    });
  }

  async function rotateLocked(tx: Tx): Promise<{ kid: string; activatesAt: Date }> {
    const now = clock.now();
    const activatesAt = new Date(now.getTime() + settings.publishAheadSec * 1000);
    const expiresAt = new Date(activatesAt.getTime() + (settings.accessTokenTtlSec + EXPIRY_MARGIN_SEC) * 1000);
    await db.signingKeys.retireCurrent(tx, activatesAt, expiresAt);
    const kid = await insertKey(tx, activatesAt);
    return { kid, activatesAt };
  }

  const self: SigningKeys = {
    async init() {
      await locked(async (tx) => {
        if ((await db.signingKeys.count(tx)) === 0) await insertKey(tx, clock.now());
      });
      await reload();
    },
    reload,
    async rotate() {
      const rotated = await locked(rotateLocked);
      await reload();
      return rotated;
    },
    async rotateIfDue() {
      if (settings.rotationIntervalSec === 0) return false;
      const rotated = await locked(async (tx) => {
        const newest = await db.signingKeys.newestActivation(tx);
        const now = clock.now().getTime();
        if (newest && (newest.getTime() > now || now - newest.getTime() < settings.rotationIntervalSec * 1000)) return false;
        await rotateLocked(tx);
        return true;
      });
      if (rotated) await reload();
      return rotated;
    },
    current() {
      const now = clock.now();
      const signer = keys.find((k) => k.row.activatesAt <= now && (k.row.retiresAt === null || k.row.retiresAt > now));
      if (!signer) throw new Error("no active signing key");
      return { kid: signer.row.kid, privateKey: signer.privateKey };
    },
    currentAgeSeconds() {
      const now = clock.now();
      const signer = keys.find((k) => k.row.activatesAt <= now && (k.row.retiresAt === null || k.row.retiresAt > now));
      return signer && (now.getTime() - signer.row.activatesAt.getTime()) / 1000;
    },
    publicKey(kid) {
      const now = clock.now();
      const key = keys.find((k) => k.row.kid === kid && published(k, now));
      if (!key && Date.now() - lastUnknownReload > UNKNOWN_KID_RELOAD_MS) {
        // Maybe another instance published it since we loaded; at most one reload per interval.
        lastUnknownReload = Date.now();
        reload().catch(() => undefined);
      }
      return key?.publicKey;
    },
    jwks() {
      const now = clock.now();
      return keys.filter((k) => published(k, now)).map(({ row }) => ({
        kty: row.publicJwk.kty!,
        crv: row.publicJwk.crv!,
        x: row.publicJwk.x!,
        kid: row.kid,
        alg: row.alg,
        use: "sig",
      }));
    },
    startMaintenance(intervalMs = 60_000, onError = () => {}) {
      const tick = () => {
        self.rotateIfDue()
          .then(() => reload())
          .catch(onError)
          .finally(() => {
            timer = setTimeout(tick, intervalMs);
            timer.unref();
          });
      };
      timer = setTimeout(tick, intervalMs);
      timer.unref();
    },
    stop() {
      clearTimeout(timer);
    },
  };
  return self;
}
