// OIDC_PROVIDERS and friends are validated at start (no database): ids, https issuers (http only
// outside production or on loopback), secrets from a file, the redirect URIs.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

const production = {
  NODE_ENV: "production", DATABASE_URL: "postgres://db.example.com/identity", TOKEN_ISSUER: "https://id.example.com", KEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString("base64"), SERVICE_KEYS: `ops:${"k".repeat(40)}`,
  CORS_ORIGINS: "https://app.example.com", PUBLIC_URL: "https://id.example.com",
};
const google = { id: "google", name: "Google", issuer: "https://accounts.google.com", client_id: "123.apps.googleusercontent.com", client_secret: "s3cret" };
const providers = (...list: unknown[]) => ({ OIDC_PROVIDERS: JSON.stringify(list) });

describe("federation configuration", () => {
  it("is off by default, with a 10-minute state", () => {
    expect(loadConfig({}).federation).toMatchObject({ providers: [], redirectUris: [], stateTtlSec: 600, allowedOrigin: undefined });
  });

  it("reads Google's documented configuration, with the default scopes and PUBLIC_URL's origin allowed", () => {
    const config = loadConfig({ ...production, ...providers(google) });
    expect(config.federation.providers).toEqual([{ id: "google", name: "Google", issuer: "https://accounts.google.com", clientId: google.client_id, clientSecret: "s3cret", scopes: "openid email profile" }]);
    expect(config.federation.allowedOrigin).toBe("https://id.example.com");
  });

  it("reads the providers, or the client secret, from files", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "oidc-config-"));
    writeFileSync(path.join(dir, "secret"), "from-a-file\n");
    writeFileSync(path.join(dir, "providers.json"), JSON.stringify([{ ...google, client_secret: undefined, client_secret_file: path.join(dir, "secret") }]));
    const config = loadConfig({ OIDC_PROVIDERS_FILE: path.join(dir, "providers.json") });
    expect(config.federation.providers[0]?.clientSecret).toBe("from-a-file");
  });

  it.each([
    ["not JSON", { OIDC_PROVIDERS: "[{" }, /OIDC_PROVIDERS must be a JSON array/],
    ["an object, not an array", { OIDC_PROVIDERS: "{}" }, /JSON array/],
    ["a bad id", providers({ ...google, id: "Google!" }), /id must be 1 to 32 characters/],
    ["an id used twice", providers(google, google), /used twice/],
    ["no client id", providers({ ...google, client_id: "" }), /client_id must be a non-empty string/],
    ["an issuer that is not a URL", providers({ ...google, issuer: "accounts.google.com" }), /issuer must be an https URL/],
    ["scopes without openid", providers({ ...google, scopes: "email" }), /must include openid/],
    ["both secret forms", providers({ ...google, client_secret_file: "/etc/hostname" }), /not both/],
    ["both variables", { ...providers(google), OIDC_PROVIDERS_FILE: "/etc/hostname" }, /not both/],
    ["a redirect URI with a query", { OIDC_REDIRECT_URIS: "https://app.example.com/cb?x=1" }, /may not have a query/],
    ["too short a state", { FEDERATION_STATE_TTL_SECONDS: "10" }, /FEDERATION_STATE_TTL_SECONDS/],
  ])("refuses %s", (_what, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("refuses an http issuer or redirect URI in production, but for loopback", () => {
    expect(() => loadConfig({ ...production, ...providers({ ...google, issuer: "http://idp.example.com" }) })).toThrow(/https:\/\/ when NODE_ENV=production/);
    expect(() => loadConfig({ ...production, OIDC_REDIRECT_URIS: "http://app.example.com/cb" })).toThrow(/https:\/\/ when NODE_ENV=production/);
    expect(loadConfig({ ...production, ...providers({ ...google, issuer: "http://127.0.0.1:9000" }) }).federation.providers).toHaveLength(1);
    expect(loadConfig(providers({ ...google, issuer: "http://idp.example.com" })).federation.providers).toHaveLength(1);
  });
});
