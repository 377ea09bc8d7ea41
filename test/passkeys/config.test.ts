// WEBAUTHN_* configuration: defaults from PUBLIC_URL (or the gateway on localhost), and the RP ID
// must be a registrable suffix of every origin's host.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

describe("WebAuthn configuration", () => {
  it("defaults to localhost and the gateway's own origin without PUBLIC_URL", () => {
    expect(loadConfig({ HTTP_PORT: "8088" }).webauthn).toEqual({ rpId: "localhost", rpName: "grpc-identity", origins: ["http://localhost:8088"], challengeTtlSec: 300 });
    expect(loadConfig({ TOTP_ISSUER: "Acme" }).webauthn.rpName).toBe("Acme");
  });

  it("follows PUBLIC_URL's host and origin", () => {
    expect(loadConfig({ PUBLIC_URL: "https://id.example.com" }).webauthn).toMatchObject({ rpId: "id.example.com", origins: ["https://id.example.com"] });
    // An IP address is never an RP ID: localhost then.
    expect(loadConfig({ PUBLIC_URL: "http://127.0.0.1:9000", HTTP_PORT: "9000" }).webauthn).toMatchObject({ rpId: "localhost", origins: ["http://localhost:9000"] });
  });

  it("takes the variables, an RP ID of a parent domain included", () => {
    const config = loadConfig({
      WEBAUTHN_RP_ID: "Example.com",
      WEBAUTHN_RP_NAME: "Example",
      WEBAUTHN_ORIGINS: "https://id.example.com, https://example.com/",
      WEBAUTHN_CHALLENGE_TTL_SECONDS: "120",
    });
    expect(config.webauthn).toEqual({ rpId: "example.com", rpName: "Example", origins: ["https://id.example.com", "https://example.com"], challengeTtlSec: 120 });
  });

  it.each([
    [{ WEBAUTHN_RP_ID: "127.0.0.1" }, /WEBAUTHN_RP_ID/],
    [{ WEBAUTHN_RP_ID: "https://example.com" }, /WEBAUTHN_RP_ID/],
    [{ WEBAUTHN_RP_ID: "example.com", WEBAUTHN_ORIGINS: "https://example.org" }, /not on WEBAUTHN_RP_ID/],
    [{ WEBAUTHN_RP_ID: "example.com", WEBAUTHN_ORIGINS: "https://notexample.com" }, /not on WEBAUTHN_RP_ID/],
    [{ WEBAUTHN_RP_ID: "id.example.com", WEBAUTHN_ORIGINS: "https://example.com" }, /not on WEBAUTHN_RP_ID/],
    [{ WEBAUTHN_RP_ID: "example.com", WEBAUTHN_ORIGINS: "http://example.com" }, /must be https/],
    [{ WEBAUTHN_RP_ID: "example.com", WEBAUTHN_ORIGINS: "https://example.com/app" }, /origins like/],
    [{ WEBAUTHN_CHALLENGE_TTL_SECONDS: "5" }, /WEBAUTHN_CHALLENGE_TTL_SECONDS/],
  ])("refuses %o", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
