// Issue 18: the key-encryption keyring. An installation upgraded from sealed blobs without a key
// id and HMAC keys derived from the KEK rotates its KEK (KEY_ENCRYPTION_KEYS), reseals everything
// (`npm run keys:rewrap`, the built command), drops the old key and restarts: sign-in, TOTP, backup
// codes, a pending one-time code, a service key and token signing all still work.
import { createCipheriv, randomBytes } from "node:crypto";
import { generateSync } from "otplib";
import { afterAll, describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { DEFAULT_KEY_ID, loadConfig } from "../../src/config.js";
import { createKeyring, deriveKey, keyedHash, seal, sealWith, unsealWith, type Keyring } from "../../src/domain/crypto.js";
import { loadHmacKeys } from "../../src/domain/secrets/hmac-keys.js";
import { createServiceAccounts } from "../../src/domain/callers/service-accounts.js";
import { createSigningKeys } from "../../src/domain/tokens/signing-keys.js";
import { openDatabase } from "../../src/db/data-source.js";
import { createStore } from "../../src/store/index.js";
import { runBuiltCli } from "../support/cli.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { ManualClock, startTestService, TEST_SERVICE_KEY, type TestService } from "../support/service.js";
import { createTestOutbox } from "../support/outbox.js";
import { accountWithKey } from "../support/service-accounts.js";
import { clientsFor } from "../support/transports.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";

describe("sealed blobs", () => {
  const k0 = { id: DEFAULT_KEY_ID, key: randomBytes(32) };
  const k1 = { id: "k1", key: randomBytes(32) };

  it("reads a blob sealed before keyrings (iv | tag | ciphertext) with the key that sealed it", () => {
    const old = seal(k0.key, Buffer.from("secret"), "aad");
    expect(unsealWith(createKeyring([k1, k0]), old, "aad")).toEqual({ plaintext: Buffer.from("secret"), keyId: undefined });
    expect(() => unsealWith(createKeyring([k1]), old, "aad")).toThrow(/no key-encryption key/);
    expect(() => unsealWith(createKeyring([k0]), old, "other aad")).toThrow();
  });

  it("records the sealing key's id, authenticated, and says which key is missing", () => {
    const sealed = sealWith(createKeyring([k1, k0]), Buffer.from("secret"), "aad");
    expect(sealed.subarray(0, 5).toString("latin1")).toBe("k1\x02k1");
    expect(unsealWith(createKeyring([k0, k1]), sealed, "aad")).toEqual({ plaintext: Buffer.from("secret"), keyId: "k1" });
    expect(() => unsealWith(createKeyring([k0]), sealed, "aad")).toThrow(/names the key-encryption key "k1"/);
    const relabelled = Buffer.concat([Buffer.from("k1\x02k0"), sealed.subarray(5)]);
    expect(() => unsealWith(createKeyring([{ id: "k0", key: k1.key }]), relabelled, "aad")).toThrow();
  });

  it("reads an old blob whose random iv happens to begin like a header (\"k1\")", () => {
    // The format before keyrings, with an iv chosen to look like a header.
    const iv = Buffer.concat([Buffer.from("k1\x02k1"), randomBytes(7)]);
    const cipher = createCipheriv("aes-256-gcm", k0.key, iv);
    cipher.setAAD(Buffer.from("aad"));
    const body = Buffer.concat([cipher.update("x"), cipher.final()]);
    const old = Buffer.concat([iv, cipher.getAuthTag(), body]);
    expect(unsealWith(createKeyring([{ id: "k1", key: k1.key }, k0]), old, "aad")).toEqual({ plaintext: Buffer.from("x"), keyId: undefined });
  });
});

describe("keys:rewrap across a KEK rotation", () => {
  const k0 = randomBytes(32);
  const k1 = randomBytes(32);
  const ringOld = createKeyring([{ id: DEFAULT_KEY_ID, key: k0 }]);
  const ringBoth = createKeyring([{ id: "k1", key: k1 }, { id: DEFAULT_KEY_ID, key: k0 }]);
  const ringNew = createKeyring([{ id: "k1", key: k1 }]);
  const clock = new ManualClock(new Date());
  const outbox = createTestOutbox();
  let database: TestDatabase;
  let service: TestService | undefined;
  afterAll(async () => {
    await service?.close();
    await database?.drop();
  });

  async function start(keyring: Keyring): Promise<TestService> {
    await service?.close();
    service = await startTestService({ database, keyring, clock, outbox });
    return service;
  }
  const clients = (s: TestService) => {
    const c = clientsFor(s, "grpc");
    return { auth: c.client(AuthService), mfa: c.client(MfaService), otp: c.client(OtpService), tokens: c.client(TokenService) };
  };
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  const totp = (secret: string) => generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
  const kekEnv = (keys: string) => ({ KEY_ENCRYPTION_KEY: "", KEY_ENCRYPTION_KEYS: keys });

  it("keeps every credential working after rotate, rewrap, removal of the old key and a restart", async () => {
    database = await createTestDatabase();
    // 1. The service as it was: one KEK, every credential made.
    let s = await start(ringOld);
    let c = clients(s);
    const email = `rotate-${Date.now()}@example.com`;
    const password = "a long enough passphrase";
    const signUp = await c.auth.signUp({ email, password });
    const setup = await c.mfa.setupTotp({}, bearer(signUp.tokens!.accessToken));
    clock.advance(30_000);
    const { backupCodes } = await c.mfa.confirmTotp({ code: totp(setup.secret) }, bearer(signUp.tokens!.accessToken));
    const pendingEmail = `pending-${Date.now()}@example.com`;
    await c.otp.sendOtp({ channel: OtpChannel.EMAIL, destination: pendingEmail, purpose: OtpPurpose.LOGIN });
    const pendingCode = outbox.lastCode(pendingEmail);
    const serviceAccount = await accountWithKey(s, `rotate-${Date.now() % 100000}`, ["tokens.verify"]);
    const oldToken = signUp.tokens!.accessToken;

    // 2. Back to what the code before issue 18 stored: blobs without a key id, hashes under keys
    // derived from the KEK, no hmac_keys rows.
    const store = createStore(s.db);
    const current = await loadHmacKeys(store, ringOld, clock);
    const legacy = (label: string) => keyedHash(deriveKey(k0, label));
    const q = (sql: string, params: unknown[]) => s.db.query(sql, params) as Promise<unknown>;
    for (const row of (await s.db.query(`SELECT kid, private_key_sealed FROM signing_keys`)) as Array<{ kid: string; private_key_sealed: Buffer }>) {
      await q(`UPDATE signing_keys SET private_key_sealed = $2 WHERE kid = $1`, [row.kid, seal(k0, unsealWith(ringOld, row.private_key_sealed, row.kid).plaintext, row.kid)]);
    }
    const [cred] = (await s.db.query(`SELECT user_id, secret_sealed FROM totp_credentials WHERE user_id = $1`, [signUp.user!.id])) as Array<{ user_id: string; secret_sealed: Buffer }>;
    const aad = `totp:${cred!.user_id}`;
    await q(`UPDATE totp_credentials SET secret_sealed = $2 WHERE user_id = $1`, [cred!.user_id, seal(k0, unsealWith(ringOld, cred!.secret_sealed, aad).plaintext, aad)]);
    for (const code of backupCodes) {
      const plain = code.replace("-", "");
      const [, n] = (await s.db.query(`UPDATE backup_codes SET code_hash = $2 WHERE code_hash = $1`, [current["backup-codes"].digest(plain), legacy("identity backup codes").digest(plain)])) as [unknown, number];
      expect(n).toBe(1);
    }
    const message = `email\nlogin\n${pendingEmail}\n${pendingCode}`;
    const [, otpRows] = (await s.db.query(`UPDATE otp_codes SET code_hash = $2 WHERE code_hash = $1`, [current["otp-codes"].digest(message), legacy("identity.v1 otp code hmac").digest(message)])) as [unknown, number];
    expect(otpRows).toBe(1);
    const [, keyRows] = (await s.db.query(`UPDATE service_account_keys SET hash = $2 WHERE hash = $1`, [current["service-keys"].digest(serviceAccount.key), legacy("identity service keys").digest(serviceAccount.key)])) as [unknown, number];
    expect(keyRows).toBe(1);
    await q(`DELETE FROM hmac_keys WHERE true`, []);

    // 3. The upgrade: the first start stores random HMAC keys and the derived ones as legacy.
    s = await start(ringOld);
    const stored = (await s.db.query(`SELECT purpose, legacy_key_sealed IS NOT NULL AS legacy FROM hmac_keys ORDER BY purpose`)) as Array<{ purpose: string; legacy: boolean }>;
    expect(stored).toEqual([{ purpose: "backup-codes", legacy: true }, { purpose: "otp-codes", legacy: true }, { purpose: "service-keys", legacy: true }]);

    // 4. Rotation: the new key first, the old one still there; then the rewrap, twice.
    s = await start(ringBoth);
    const both = `k1:${k1.toString("base64")},${DEFAULT_KEY_ID}:${k0.toString("base64")}`;
    const first = await runBuiltCli("keys-rewrap.js", database.url, [], kekEnv(both));
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/signing_keys\.private_key_sealed: 1 read, 1 resealed/);
    expect(first.stdout).toMatch(/totp_credentials\.secret_sealed: 1 read, 1 resealed/);
    expect(first.stdout).toMatch(/hmac_keys\.key_sealed: 3 read, 3 resealed/);
    expect(first.stdout).toMatch(/hmac_keys\.legacy_key_sealed: 3 read, 3 resealed/);
    const again = await runBuiltCli("keys-rewrap.js", database.url, ["--batch-size", "1"], kekEnv(both));
    expect(again.stdout).toMatch(/keys:rewrap: 0 resealed under "k1"/);
    expect(again.stdout).toMatch(/hmac_keys\.key_sealed: 3 read, 0 resealed, 3 already under "k1"/);
    for (const [table, column] of [["signing_keys", "private_key_sealed"], ["totp_credentials", "secret_sealed"], ["hmac_keys", "key_sealed"], ["hmac_keys", "legacy_key_sealed"]]) {
      const blobs = (await s.db.query(`SELECT ${column} AS b FROM ${table} WHERE ${column} IS NOT NULL`)) as Array<{ b: Buffer }>;
      for (const { b } of blobs) expect(b.subarray(0, 5).toString("latin1"), `${table}.${column}`).toBe("k1\x02k1");
    }
    // The removed key's runner refuses, naming the key it lacks.
    const withoutNew = await runBuiltCli("keys-rewrap.js", database.url, [], kekEnv(`${DEFAULT_KEY_ID}:${k0.toString("base64")}`));
    expect(withoutNew.code).toBe(1);
    expect(withoutNew.stderr).toMatch(/"k1"/);

    // 5. The old key removed, restarted: everything works.
    s = await start(ringNew);
    c = clients(s);
    const verified = await c.tokens.verifyToken({ token: oldToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    expect(verified.active).toBe(true);
    clock.advance(30_000);
    const login = await c.auth.login({ identifier: email, password });
    expect(login.result.case).toBe("mfaChallenge");
    if (login.result.case !== "mfaChallenge") return;
    const byTotp = await c.mfa.verifyMfa({ challengeToken: login.result.value.challengeToken, code: { case: "totpCode", value: totp(setup.secret) } });
    expect(byTotp.tokens?.accessToken).toBeTruthy();
    const fresh = await c.tokens.verifyToken({ token: byTotp.tokens!.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    expect(fresh.active).toBe(true);
    const second = await c.auth.login({ identifier: email, password });
    if (second.result.case !== "mfaChallenge") throw new Error("no challenge");
    const byBackup = await c.mfa.verifyMfa({ challengeToken: second.result.value.challengeToken, code: { case: "backupCode", value: backupCodes[0]! } });
    expect(byBackup.tokens?.accessToken).toBeTruthy();
    const byCode = await c.otp.verifyOtp({ channel: OtpChannel.EMAIL, destination: pendingEmail, purpose: OtpPurpose.LOGIN, code: pendingCode });
    expect(byCode.result.case).toBe("tokens");
    const asService = await c.tokens.verifyToken({ token: oldToken }, { headers: { "x-service-key": serviceAccount.key } });
    expect(asService.active).toBe(true);
    // New credentials are made under the new keys: a fresh backup code set verifies too.
    clock.advance(30_000);
    const regenerated = await c.mfa.regenerateBackupCodes({ totpCode: totp(setup.secret) }, bearer(byTotp.tokens!.accessToken));
    const third = await c.auth.login({ identifier: email, password });
    if (third.result.case !== "mfaChallenge") throw new Error("no challenge");
    expect((await c.mfa.verifyMfa({ challengeToken: third.result.value.challengeToken, code: { case: "backupCode", value: regenerated.backupCodes[0]! } })).tokens).toBeDefined();
  }, 120_000);
});

describe("secrets from files and every error at once", () => {
  it("reads NAME_FILE, trims one trailing newline, and refuses NAME with NAME_FILE", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(tmpdir(), "identity-secrets-"));
    const key = randomBytes(32).toString("base64");
    writeFileSync(path.join(dir, "kek"), `k2:${key}\n`);
    writeFileSync(path.join(dir, "db"), "postgres://identity:s3cret@db/identity\n");
    writeFileSync(path.join(dir, "keys"), `ops:${"k".repeat(40)}`);
    const config = loadConfig({
      KEY_ENCRYPTION_KEYS_FILE: path.join(dir, "kek"),
      DATABASE_URL_FILE: path.join(dir, "db"),
      SERVICE_KEYS_FILE: path.join(dir, "keys"),
    });
    expect(config.keyEncryptionKeys).toEqual([{ id: "k2", key: Buffer.from(key, "base64") }]);
    expect(config.databaseUrl).toBe("postgres://identity:s3cret@db/identity");
    expect(config.serviceKeys).toEqual([{ name: "ops", key: "k".repeat(40) }]);
    expect(() => loadConfig({ DATABASE_URL: "postgres://x/y", DATABASE_URL_FILE: path.join(dir, "db") })).toThrow(/DATABASE_URL and DATABASE_URL_FILE are both set/);
    expect(() => loadConfig({ SMTP_URL_FILE: path.join(dir, "missing"), OTP_EMAIL_PROVIDER: "smtp", SMTP_FROM: "a@b.example" })).toThrow(/SMTP_URL_FILE must name a readable file/);
  });

  it("reads KEY_ENCRYPTION_KEYS as id:key pairs, the current first, and KEY_ENCRYPTION_KEY as the id default", () => {
    const a = randomBytes(32).toString("base64");
    const b = randomBytes(32).toString("base64");
    expect(loadConfig({ KEY_ENCRYPTION_KEYS: `new:${a}, default:${b}` }).keyEncryptionKeys?.map((k) => k.id)).toEqual(["new", "default"]);
    expect(loadConfig({ KEY_ENCRYPTION_KEY: a }).keyEncryptionKeys).toEqual([{ id: "default", key: Buffer.from(a, "base64") }]);
    for (const bad of [`${a}`, `x:${a},x:${b}`, "k:c2hvcnQ=", `bad id:${a}`]) {
      expect(() => loadConfig({ KEY_ENCRYPTION_KEYS: bad }), bad).toThrow(/KEY_ENCRYPTION_KEYS/);
    }
    let message = "";
    try {
      loadConfig({ KEY_ENCRYPTION_KEYS: `x:${a},y:c2hvcnQ=` });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/the key "y" must be 32 bytes/);
    expect(message).not.toContain(a);
    expect(() => loadConfig({ KEY_ENCRYPTION_KEY: a, KEY_ENCRYPTION_KEYS: `x:${b}` })).toThrow(/both set/);
  });
});

describe("the legacy HMAC keys", () => {
  it("are stored only for an installation upgraded from derived keys, and retire once no stored hash needs them", async () => {
    const k0 = randomBytes(32);
    const ring = createKeyring([{ id: DEFAULT_KEY_ID, key: k0 }]);
    const t0 = new Date("2026-12-01T12:00:00Z");
    const clock = new ManualClock(t0);
    const database = await createTestDatabase();
    const db = await openDatabase({ url: database.url });
    try {
      const store = createStore(db);
      // What the previous version left: a signing key sealed without a key id, and a service
      // key hashed under the key derived from the KEK.
      const signing = createSigningKeys(store, ring, clock, { accessTokenTtlSec: 300, publishAheadSec: 0, rotationIntervalSec: 0 });
      await signing.init();
      signing.stop();
      for (const row of (await db.query(`SELECT kid, private_key_sealed FROM signing_keys`)) as Array<{ kid: string; private_key_sealed: Buffer }>) {
        await db.query(`UPDATE signing_keys SET private_key_sealed = $2 WHERE kid = $1`, [row.kid, seal(k0, unsealWith(ring, row.private_key_sealed, row.kid).plaintext, row.kid)]);
      }
      const derived = keyedHash(deriveKey(k0, "identity service keys"));
      const before = createServiceAccounts({ db: store, clock, hash: derived });
      await before.create({ name: "legacy-caller", permissions: ["tokens.verify"] });
      const { key, prefix } = await before.addKey("legacy-caller");

      clock.advance(60_000);
      const legacyOf = async () => Object.fromEntries(((await db.query(`SELECT purpose, legacy_key_sealed IS NOT NULL AS legacy FROM hmac_keys`)) as Array<{ purpose: string; legacy: boolean }>).map((r) => [r.purpose, r.legacy]));
      const keys = await loadHmacKeys(store, ring, clock);
      expect(await legacyOf()).toEqual({ "backup-codes": true, "otp-codes": true, "service-keys": true });
      const [stored] = (await db.query(`SELECT hash FROM service_account_keys WHERE prefix = $1`, [prefix])) as Array<{ hash: Buffer }>;
      expect(keys["service-keys"].matches(key, stored!.hash)).toBe(true);
      expect(keys["service-keys"].digest(key).equals(stored!.hash)).toBe(false);

      clock.advance(12 * 3600_000);
      await loadHmacKeys(store, ring, clock);
      expect(await legacyOf()).toEqual({ "backup-codes": true, "otp-codes": true, "service-keys": true });
      // A day on: codes made before the upgrade have expired, no backup code was made before it;
      // the service key made before it still needs its legacy key.
      clock.advance(13 * 3600_000);
      await loadHmacKeys(store, ring, clock);
      expect(await legacyOf()).toEqual({ "backup-codes": false, "otp-codes": false, "service-keys": true });
      const after = createServiceAccounts({ db: store, clock, hash: (await loadHmacKeys(store, ring, clock))["service-keys"] });
      expect(await after.revokeKey(prefix)).toBe(true);
      await loadHmacKeys(store, ring, clock);
      expect(await legacyOf()).toEqual({ "backup-codes": false, "otp-codes": false, "service-keys": false });

      // A new installation stores none.
      const fresh = await createTestDatabase();
      const freshDb = await openDatabase({ url: fresh.url });
      try {
        await loadHmacKeys(createStore(freshDb), ring, clock);
        expect(((await freshDb.query(`SELECT count(*)::int AS n FROM hmac_keys WHERE legacy_key_sealed IS NULL`)) as Array<{ n: number }>)[0]!.n).toBe(3);
      } finally {
        await freshDb.destroy();
        await fresh.drop();
      }
    } finally {
      await db.destroy();
      await database.drop();
    }
  }, 60_000);
});
