// Ed25519 signing keys, kept in PostgreSQL with the private half sealed by the key-encryption
// key. The newest active key signs; every unexpired key verifies and is published in the JWKS.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import type { DataSource } from "typeorm";
import { SigningKeyEntity, type SigningKeyRow } from "../db/entities/index.js";
import type { Clock } from "./clock.js";
import { seal, unseal } from "./crypto.js";

export const SIGNING_ALG = "EdDSA";

export interface PublicJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly kid: string;
  readonly alg: string;
  readonly use: string;
}

export interface SigningKeys {
  /** Creates the first key when the table is empty, then loads the keys. */
  init(): Promise<void>;
  /** Reloads keys from the database (another instance may have rotated). */
  reload(): Promise<void>;
  current(): { readonly kid: string; readonly privateKey: KeyObject };
  /** The public key of `kid`, if it is published. */
  publicKey(kid: string): KeyObject | undefined;
  jwks(): readonly PublicJwk[];
}

interface LoadedKey {
  readonly row: SigningKeyRow;
  readonly publicKey: KeyObject;
  privateKey?: KeyObject;
}

export function createSigningKeys(db: DataSource, kek: Buffer, clock: Clock): SigningKeys {
  let keys = new Map<string, LoadedKey>();
  let signer: { kid: string; privateKey: KeyObject } | undefined;

  async function createKey(): Promise<void> {
    const pair = await generateKeyPair(SIGNING_ALG, { crv: "Ed25519", extractable: true });
    const publicJwk = await exportJWK(pair.publicKey);
    const privateJwk = await exportJWK(pair.privateKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    await db.manager.insert(SigningKeyEntity, {
      kid,
      alg: SIGNING_ALG,
      publicJwk: { kty: publicJwk.kty!, crv: publicJwk.crv!, x: publicJwk.x! },
      privateKeySealed: seal(kek, Buffer.from(JSON.stringify(privateJwk)), kid),
      activatesAt: clock.now(),
      retiresAt: null,
      expiresAt: null,
    });
  }

  async function reload(): Promise<void> {
    const now = clock.now();
    const rows = await db.manager
      .createQueryBuilder(SigningKeyEntity, "k")
      .where("k.expires_at IS NULL OR k.expires_at > :now", { now })
      .orderBy("k.activates_at", "DESC")
      .getMany();
    const next = new Map<string, LoadedKey>();
    for (const row of rows) {
      const previous = keys.get(row.kid);
      next.set(row.kid, previous ?? {
        row,
        publicKey: createPublicKey({ key: row.publicJwk as JWK as import("node:crypto").JsonWebKey, format: "jwk" }),
      });
    }
    keys = next;
    const active = rows.find((r) => r.activatesAt <= now && (r.retiresAt === null || r.retiresAt > now));
    if (active) {
      const loaded = next.get(active.kid)!;
      loaded.privateKey ??= createPrivateKey({
        key: JSON.parse(unseal(kek, active.privateKeySealed, active.kid).toString()),
        format: "jwk",
      });
      signer = { kid: active.kid, privateKey: loaded.privateKey };
    } else {
      signer = undefined;
    }
  }

  return {
    async init() {
      await db.transaction(async (manager) => {
        // One instance creates the first key even when several start at once.
        await manager.query("SELECT pg_advisory_xact_lock(hashtext('signing_keys'))");
        const count = await manager.count(SigningKeyEntity);
        if (count === 0) await createKey();
      });
      await reload();
    },
    reload,
    current() {
      if (!signer) throw new Error("no active signing key");
      return signer;
    },
    publicKey: (kid) => keys.get(kid)?.publicKey,
    jwks: () =>
      [...keys.values()].map(({ row }) => ({
        kty: row.publicJwk.kty!,
        crv: row.publicJwk.crv!,
        x: row.publicJwk.x!,
        kid: row.kid,
        alg: row.alg,
        use: "sig",
      })),
  };
}
