// Managing service accounts (src/domain/callers/service-accounts.ts) on the real PostgreSQL:
// create, list, keys, certificates, disable and enable; every bad input refused with nothing
// stored; the triggers' notifications and the revocation feed's answer for service accounts, the
// contract the service tokens rely on.
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/domain/errors.js";
import { systemClock } from "../../src/domain/clock.js";
import { createRevocations } from "../../src/domain/tokens/revocation.js";
import type { AccessClaims } from "../../src/domain/tokens/claims.js";
import { createLogger } from "../../src/logger.js";
import { createStore, type RevocationEvent } from "../../src/store/index.js";
import { parseRevocation } from "../../src/store/revocation-feed.js";
import { createServiceDirectory } from "../../src/domain/callers/directory.js";
import { loadHmacKeys } from "../../src/domain/secrets/hmac-keys.js";
import { TEST_KEYRING } from "../support/service.js";
import { accountWithKey, uniqueAccountName } from "../support/service-accounts.js";
import { setupService } from "../support/setup.js";

const t = setupService();
const accounts = () => t.app.serviceAccounts;

/** The AppError `action` throws (failing the test when it throws none or another error). */
async function refusal(action: () => Promise<unknown>): Promise<AppError> {
  const err = await action().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}
const fieldsOf = (err: AppError) => err.violations.map((v) => `${v.field}:${v.reason}`);

/** Polls `check` until it returns true, failing after `ms`. */
async function within(ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("create and list", () => {
  it("stores the account with its permissions and audiences, and lists it", async () => {
    const name = uniqueAccountName("billing");
    const created = await accounts().create({ name, description: "Billing", permissions: ["tokens.verify", "tokens.issue", "tokens.verify"], audiences: ["payments-api"] });
    expect(created).toMatchObject({ name, description: "Billing", status: "active", permissions: ["tokens.verify", "tokens.issue"], audiences: ["payments-api"], tokensValidAfter: null });
    const listed = (await accounts().list()).find((a) => a.name === name);
    expect(listed).toMatchObject({ name, keys: [], certificates: [] });
  });

  it.each([
    [{ name: "Billing", permissions: ["tokens.verify"] }, ["name:INVALID_FORMAT"]],
    [{ name: "1billing", permissions: ["tokens.verify"] }, ["name:INVALID_FORMAT"]],
    [{ name: `b${"x".repeat(63)}`, permissions: ["tokens.verify"] }, ["name:INVALID_FORMAT"]],
    [{ name: "ok-name", permissions: ["tokens.verify", "root"] }, ["permissions:UNKNOWN_PERMISSION"]],
    [{ name: "ok-name", permissions: [] }, ["permissions:REQUIRED"]],
    [{ name: "ok-name", permissions: ["tokens.issue"], audiences: ["has space"] }, ["audiences:INVALID_FORMAT"]],
    [{ name: "bad name", permissions: ["nope"] }, ["name:INVALID_FORMAT", "permissions:UNKNOWN_PERMISSION"]],
  ])("refuses %j with INVALID_ARGUMENT %j and stores nothing", async (input, fields) => {
    const err = await t.expectUnchanged(() => refusal(() => accounts().create(input)));
    expect(err.reason).toBe("INVALID_ARGUMENT");
    expect(fieldsOf(err)).toEqual(fields);
  });

  it("refuses a duplicate name, and a SERVICE_KEYS name, with SERVICE_ACCOUNT_EXISTS and stores nothing", async () => {
    const name = uniqueAccountName("dup");
    await accounts().create({ name, permissions: ["tokens.verify"] });
    for (const taken of [name, "test"]) {
      const err = await t.expectUnchanged(() => refusal(() => accounts().create({ name: taken, permissions: ["users.read"] })));
      expect(err.reason).toBe("SERVICE_ACCOUNT_EXISTS");
    }
  });

  it("never renames an account: the name is immutable in the database", async () => {
    const name = uniqueAccountName("fixed");
    await accounts().create({ name, permissions: ["tokens.verify"] });
    await expect(t.db.query("UPDATE service_accounts SET name = 'renamed' WHERE name = $1", [name])).rejects.toThrow(/immutable/);
  });
});

describe("keys", () => {
  it("shows a key once: stored as prefix and keyed hash only", async () => {
    const { name, key, prefix } = await accountWithKey(t, uniqueAccountName("keyed"), ["tokens.verify"]);
    expect(key).toMatch(/^isk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
    expect(key.startsWith(`isk_${prefix}_`)).toBe(true);
    const [row] = (await t.db.query("SELECT k.prefix, k.hash, k.expires_at, k.revoked_at FROM service_account_keys k JOIN service_accounts a ON a.id = k.account_id WHERE a.name = $1", [name])) as Array<{ prefix: string; hash: Buffer; expires_at: Date | null; revoked_at: Date | null }>;
    expect(row).toMatchObject({ prefix, expires_at: null, revoked_at: null });
    expect(row!.hash).toHaveLength(32);
    const secret = key.slice(-43);
    const dump = JSON.stringify(await t.db.query("SELECT * FROM service_account_keys")) + (await t.db.query("SELECT encode(hash, 'base64') AS h FROM service_account_keys")).map((r: { h: string }) => r.h).join();
    expect(dump).not.toContain(secret);
    expect((await accounts().list()).find((a) => a.name === name)!.keys.map((k) => k.prefix)).toEqual([prefix]);
  });

  it("refuses a key for an unknown account (NOT_FOUND), a bad name, or an expiry in the past, storing nothing", async () => {
    expect((await t.expectUnchanged(() => refusal(() => accounts().addKey("no-such-account")))).reason).toBe("SERVICE_ACCOUNT_NOT_FOUND");
    expect(fieldsOf(await t.expectUnchanged(() => refusal(() => accounts().addKey("Bad Name"))))).toEqual(["name:INVALID_FORMAT"]);
    const name = uniqueAccountName("past");
    await accounts().create({ name, permissions: ["tokens.verify"] });
    expect(fieldsOf(await t.expectUnchanged(() => refusal(() => accounts().addKey(name, new Date(Date.now() - 1000)))))).toEqual(["expires_at:IN_THE_PAST"]);
  });

  it("revokes a key once; a second revoke changes nothing; unknown and malformed prefixes are refused", async () => {
    const { prefix } = await accountWithKey(t, uniqueAccountName("revoke"), ["tokens.verify"]);
    expect(await accounts().revokeKey(prefix)).toBe(true);
    const [revoked] = (await t.db.query("SELECT revoked_at FROM service_account_keys WHERE prefix = $1", [prefix])) as Array<{ revoked_at: Date }>;
    expect(revoked!.revoked_at).toBeInstanceOf(Date);
    expect(await t.expectUnchanged(() => accounts().revokeKey(prefix))).toBe(false);
    expect((await t.expectUnchanged(() => refusal(() => accounts().revokeKey("a".repeat(12))))).reason).toBe("SERVICE_KEY_NOT_FOUND");
    expect(fieldsOf(await t.expectUnchanged(() => refusal(() => accounts().revokeKey("isk_whole_key"))))).toEqual(["prefix:INVALID_FORMAT"]);
  });
});

describe("certificates", () => {
  it("maps a SPIFFE ID and a subject to the account", async () => {
    const name = uniqueAccountName("certs");
    await accounts().create({ name, permissions: ["tokens.verify"] });
    const spiffe = `spiffe://example.org/ns/prod/sa/${name}`;
    expect(await accounts().addCertificate(name, { spiffe })).toEqual({ kind: "spiffe", value: spiffe });
    expect(await accounts().addCertificate(name, { subject: `O=Example, cn=${name}` })).toEqual({ kind: "subject", value: `O=Example\nCN=${name}` });
    expect((await accounts().list()).find((a) => a.name === name)!.certificates).toEqual([
      { kind: "spiffe", value: spiffe },
      { kind: "subject", value: `O=Example\nCN=${name}` },
    ]);
  });

  it.each(["https://example.org/billing", "spiffe://Example.org/billing", "spiffe://example.org", "spiffe://example.org/", "spiffe://example.org/a/../b", "spiffe://example.org/a?x=1", "spiffe://user@example.org/a"])(
    "refuses the SPIFFE ID %s with INVALID_ARGUMENT and stores nothing",
    async (spiffe) => {
      const name = uniqueAccountName("bad-spiffe");
      await accounts().create({ name, permissions: ["tokens.verify"] });
      expect(fieldsOf(await t.expectUnchanged(() => refusal(() => accounts().addCertificate(name, { spiffe })))).toString()).toBe("spiffe:INVALID_FORMAT");
    },
  );

  it("refuses a taken identity (CERTIFICATE_IDENTITY_TAKEN), a bad subject, and an unknown account, storing nothing", async () => {
    const [first, second] = [uniqueAccountName("owner"), uniqueAccountName("taker")];
    await accounts().create({ name: first, permissions: ["tokens.verify"] });
    await accounts().create({ name: second, permissions: ["tokens.verify"] });
    const spiffe = `spiffe://example.org/${first}`;
    await accounts().addCertificate(first, { spiffe });
    expect((await t.expectUnchanged(() => refusal(() => accounts().addCertificate(second, { spiffe })))).reason).toBe("CERTIFICATE_IDENTITY_TAKEN");
    expect(fieldsOf(await t.expectUnchanged(() => refusal(() => accounts().addCertificate(second, { subject: "just text" }))))).toEqual(["subject:INVALID_FORMAT"]);
    expect((await t.expectUnchanged(() => refusal(() => accounts().addCertificate("no-such-account", { spiffe: "spiffe://example.org/x" })))).reason).toBe("SERVICE_ACCOUNT_NOT_FOUND");
  });
});

describe("disable and enable", () => {
  const stateOf = async (name: string) =>
    ((await t.db.query("SELECT status, tokens_valid_after FROM service_accounts WHERE name = $1", [name])) as Array<{ status: string; tokens_valid_after: Date | null }>)[0]!;

  it("each moves tokens_valid_after; repeating one changes nothing; an unknown account is NOT_FOUND", async () => {
    const name = uniqueAccountName("toggle");
    await accounts().create({ name, permissions: ["tokens.verify"] });
    expect(await accounts().disable(name)).toBe(true);
    const disabled = await stateOf(name);
    expect(disabled.status).toBe("disabled");
    expect(disabled.tokens_valid_after).toBeInstanceOf(Date);
    expect(await t.expectUnchanged(() => accounts().disable(name))).toBe(false);
    expect(await accounts().enable(name)).toBe(true);
    const enabled = await stateOf(name);
    expect(enabled.status).toBe("active");
    expect(enabled.tokens_valid_after!.getTime()).toBeGreaterThanOrEqual(disabled.tokens_valid_after!.getTime());
    expect((await t.expectUnchanged(() => refusal(() => accounts().disable("no-such-account")))).reason).toBe("SERVICE_ACCOUNT_NOT_FOUND");
    expect((await t.expectUnchanged(() => refusal(() => accounts().enable("No Such")))).reason).toBe("INVALID_ARGUMENT");
  });
});

describe("the contract with service tokens: notifications and the revocation feed", () => {
  it("a change NOTIFYs {services:true}; disabling also sends the users payload for service:<name>", async () => {
    const name = uniqueAccountName("notify");
    const events: RevocationEvent[] = [];
    const raw: string[] = [];
    let servicesChanged = 0;
    const store = createStore(t.db);
    const listener = await store.revocationFeed.listen({
      onEvent: (event) => events.push(event),
      onServicesChanged: () => servicesChanged++,
      onMalformed: (err) => raw.push(String(err)),
      onLost: () => {},
    });
    try {
      await accounts().create({ name, permissions: ["tokens.verify"] });
      await within(2_000, () => servicesChanged > 0);
      await accounts().disable(name);
      await within(2_000, () => events.some((e) => e.kind === "user" && e.userId === `service:${name}`));
      const disabled = events.find((e) => e.kind === "user" && e.userId === `service:${name}`);
      expect(disabled).toMatchObject({ kind: "user", userId: `service:${name}`, status: "disabled" });
      expect(raw).toEqual([]);
    } finally {
      await listener.close();
    }
    expect(parseRevocation('{"services":true}')).toEqual([{ kind: "services" }]);
  });

  it("recent() answers a disabled account as the user service:<name>, and Revocations.check says USER_DISABLED for its tokens", async () => {
    const name = uniqueAccountName("revoked-tokens");
    await accounts().create({ name, permissions: ["tokens.issue"], audiences: ["orders"] });
    const store = createStore(t.db);
    const before = new Date(Date.now() - 1000);
    const revocations = createRevocations(store, systemClock, createLogger("silent"), { accessTokenTtlSec: 300 });
    await revocations.start();
    try {
      const claims = { sub: `service:${name}`, sid: "", iat: Math.floor(Date.now() / 1000) - 5 } as unknown as AccessClaims;
      expect(revocations.check(claims)).toBeUndefined();
      await accounts().disable(name);
      const ms = await within(1_000, () => revocations.check(claims) === "USER_DISABLED");
      expect(ms).toBeLessThan(1_000);
      const recent = await store.revocationFeed.recent(store.direct, before);
      expect(recent.users).toContainEqual({ id: `service:${name}`, validAfter: expect.any(Date), status: "disabled" });
    } finally {
      await revocations.stop();
    }
  });
});

describe("the directory", () => {
  it("resolves a key from memory, records its use off the request path, and keeps its last directory when a reload fails", async () => {
    const account = await accountWithKey(t, uniqueAccountName("directory"), ["tokens.verify", "users.read"], { audiences: ["orders"] });
    const store = createStore(t.db);
    const failing = { ...store, transaction: () => Promise.reject(new Error("database down")) } as typeof store;
    let db = store;
    const directory = createServiceDirectory(
      { direct: store.direct, serviceAccounts: store.serviceAccounts, transaction: (fn) => db.transaction(fn) },
      systemClock,
      createLogger("silent"),
      { bootstrap: [{ name: "boot", key: "b".repeat(40) }], hash: (await loadHmacKeys(store, TEST_KEYRING, systemClock))["service-keys"], flushMs: 60_000 },
    );
    try {
      await directory.reload();
      const caller = directory.byKey(account.key);
      expect(caller).toMatchObject({ name: account.name, audiences: ["orders"], via: "key" });
      expect([...caller.permissions]).toEqual(["tokens.verify", "users.read"]);
      // Warm: the same object, from the cache.
      expect(directory.byKey(account.key)).toBe(caller);
      expect(directory.byKey("b".repeat(40))).toMatchObject({ name: "boot", via: "bootstrap", audiences: [] });
      expect(() => directory.byKey("c".repeat(40))).toThrow(AppError);

      db = failing;
      await expect(directory.reload()).rejects.toThrow("database down");
      expect(directory.byKey(account.key).name).toBe(account.name);
    } finally {
      await directory.stop();
    }
    const [row] = (await t.db.query("SELECT last_used_at FROM service_account_keys WHERE prefix = $1", [account.prefix])) as Array<{ last_used_at: Date | null }>;
    expect(row!.last_used_at).toBeInstanceOf(Date);
  });
});
