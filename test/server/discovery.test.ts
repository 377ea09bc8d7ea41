// Server metadata (issue 13, item 5): a resource server in any language finds the keys from the
// issuer alone and verifies an access token offline, as a third-party library would.
import http from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { setupService } from "../support/setup.js";
import { freePort } from "../support/ports.js";

const t = setupService(async () => {
  // The issuer is where the gateway is reached, as in a deployment (TOKEN_ISSUER = PUBLIC_URL).
  const port = await freePort();
  return { env: { HTTP_PORT: String(port), TOKEN_ISSUER: `http://127.0.0.1:${port}` } };
});

describe("server metadata", () => {
  it("is served at both well-known paths, the same document, naming the issuer, keys and introspection", async () => {
    const issuer = t.config.issuer;
    expect(t.httpUrl).toBe(issuer);
    const [oidc, oauth] = await Promise.all(
      ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"].map(async (p) => {
        const res = await fetch(`${t.httpUrl}${p}`);
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toMatch(/^application\/json/);
        expect(res.headers.get("cache-control")).toBe("public, max-age=300");
        return res.json();
      }),
    );
    expect(oauth).toEqual(oidc);
    expect(oidc).toMatchObject({
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${issuer}/oauth2/introspect`,
      id_token_signing_alg_values_supported: ["EdDSA"],
    });
  });

  it("does not take its URLs from the request's Host header", async () => {
    // node:http sends the Host header as given (fetch may not).
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.get(`${t.httpUrl}/.well-known/openid-configuration`, { headers: { host: "evil.example" } }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => resolve(text));
      });
      req.on("error", reject);
    });
    const doc = JSON.parse(body) as { jwks_uri: string; introspection_endpoint: string };
    expect(doc.jwks_uri).toBe(`${t.config.issuer}/.well-known/jwks.json`);
    expect(doc.introspection_endpoint).not.toContain("evil.example");
  });

  it("lets a resource server verify an access token: discovery, then the remote JWKS, EdDSA and at+jwt pinned", async () => {
    const account = await t.signUp("discovery");
    const discovery = (await (await fetch(`${t.config.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const { payload, protectedHeader } = await jwtVerify(account.tokens.accessToken, jwks, {
      issuer: discovery.issuer,
      audience: t.config.audience,
      algorithms: ["EdDSA"],
      typ: "at+jwt",
    });
    expect(protectedHeader).toMatchObject({ alg: "EdDSA", typ: "at+jwt" });
    expect(payload.sub).toBe(account.userId);
    // Pinned: another algorithm list or type refuses the same token.
    await expect(jwtVerify(account.tokens.accessToken, jwks, { algorithms: ["RS256"] })).rejects.toThrow();
    await expect(jwtVerify(account.tokens.accessToken, jwks, { typ: "JWT" })).rejects.toThrow();
  });

  it("answers only GET", async () => {
    const res = await fetch(`${t.httpUrl}/.well-known/openid-configuration`, { method: "POST" });
    expect(res.status).not.toBe(200);
  });
});
