// Token checks over plain HTTP (issue 13, items 4 and 5): RFC 7662 introspection as a
// resource-server library calls it, and forward authentication behind a real nginx
// (`auth_request`), the way a deployment puts it in front of a backend.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../support/accounts.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { TEST_KEK, TEST_SERVICE_KEY } from "../support/service.js";
import { setupService, type TestContext } from "../support/setup.js";

const PRODUCTION = { NODE_ENV: "production", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), PUBLIC_URL: "https://id.example.com" };

function introspect(t: TestContext, body: string, headers: Record<string, string> = {}) {
  return fetch(`${t.httpUrl}/oauth2/introspect`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body,
  });
}
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const withKey = { "x-service-key": TEST_SERVICE_KEY };

describe("POST /oauth2/introspect", () => {
  const t = setupService({ env: PRODUCTION });

  it("answers a person's active token with its claims (RFC 7662), to a caller with a service key", async () => {
    const account = await t.signUp("introspect");
    for (const headers of [withKey, { authorization: `Bearer ${TEST_SERVICE_KEY}` }] as Array<Record<string, string>>) {
      const res = await introspect(t, form({ token: account.tokens.accessToken, token_type_hint: "access_token" }), headers);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(await res.json()).toMatchObject({
        active: true,
        token_type: "Bearer",
        iss: t.config.issuer,
        sub: account.userId,
        aud: t.config.audience,
        sid: account.tokens.sessionId,
        role: "user",
        amr: ["pwd"],
      });
    }
  });

  it("answers a service token for the audience asked, with client_id and scope", async () => {
    const token = t.app.services.accessTokens.issueService({ service: "billing", audience: "payments", scope: ["tokens.verify"] }).token;
    expect(await (await introspect(t, form({ token }), withKey)).json()).toEqual({ active: false });
    expect(await (await introspect(t, form({ token, audience: "payments" }), withKey)).json()).toMatchObject({
      active: true,
      sub: "service:billing",
      client_id: "billing",
      scope: "tokens.verify",
      aud: "payments",
    });
  });

  it("answers only {active:false} for a revoked, forged or garbage token", async () => {
    const account = await t.signUp("introspect-revoked");
    await t.clients("grpc").auth.logout({}, bearer(account.tokens.accessToken));
    const [h, p] = account.tokens.accessToken.split(".");
    for (const token of [account.tokens.accessToken, `${h}.${p}.AAAA`, "garbage", account.tokens.refreshToken]) {
      const res = await introspect(t, form({ token }), withKey);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ active: false });
    }
  });

  it("refuses a caller without a valid service credential, before reading the token", async () => {
    const account = await t.signUp("introspect-anon");
    const body = form({ token: account.tokens.accessToken });
    const none = await introspect(t, body);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="identity"');
    expect(await none.json()).toMatchObject({ error: "invalid_client", reason: "SERVICE_KEY_REQUIRED" });
    for (const headers of [{ "x-service-key": "not-the-key-0123456789abcdef0123456789" }, { authorization: "Bearer not-the-key-0123456789abcdef" }, { authorization: "Basic !!!" }] as Array<Record<string, string>>) {
      const res = await introspect(t, body, headers);
      expect([401, 403]).toContain(res.status);
      expect((await res.json()) as object).not.toHaveProperty("active");
    }
  });

  it("answers a clear error for a bad request", async () => {
    const missing = await introspect(t, form({}), withKey);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: "invalid_request" });
    const json = await fetch(`${t.httpUrl}/oauth2/introspect`, { method: "POST", headers: { "content-type": "application/json", ...withKey }, body: "{}" });
    expect(json.status).toBe(400);
    const get = await fetch(`${t.httpUrl}/oauth2/introspect?token=x`, { headers: withKey });
    expect(get.status).toBe(405);
    const huge = await introspect(t, form({ token: "x".repeat(20_000) }), withKey);
    expect(huge.status).toBe(413);
  });
});

/** A backend behind nginx: answers 200 with the request headers it received. */
function startUpstream(): Promise<{ port: number; server: http.Server }> {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ headers: req.headers }));
    });
    server.listen(0, "127.0.0.1", () => resolve({ port: (server.address() as AddressInfo).port, server }));
  });
}

const IDENTITY = ["user-id", "session-id", "role", "amr", "subject-kind", "service", "scope"];

/**
 * nginx `auth_request` in front of `upstream`, asking the identity gateway's /authz with `key`.
 * proxy_set_header replaces whatever X-Identity-* the client sent (empty: removed). A 401 of
 * the subrequest reaches the client with its WWW-Authenticate (nginx passes it on).
 */
function nginxConfig(identityUrl: string, upstreamPort: number, key: string | undefined) {
  return (port: number) => `
  server {
    listen 127.0.0.1:${port};
    location / {
      auth_request /_identity;
${IDENTITY.map((h) => `      auth_request_set $identity_${h.replace(/-/g, "_")} $upstream_http_x_identity_${h.replace(/-/g, "_")};
      proxy_set_header X-Identity-${h} $identity_${h.replace(/-/g, "_")};`).join("\n")}
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    location = /_identity {
      internal;
      proxy_pass ${identityUrl}/authz;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      ${key === undefined ? "" : `proxy_set_header X-Service-Key "${key}";`}
    }
  }`;
}

describe("GET /authz behind nginx auth_request", () => {
  const t = setupService({ env: PRODUCTION });
  let nginx: Nginx;
  let upstream: { port: number; server: http.Server };
  beforeAll(async () => {
    upstream = await startUpstream();
    nginx = await startNginx(nginxConfig(t.httpUrl, upstream.port, TEST_SERVICE_KEY));
  });
  afterAll(async () => {
    await nginx?.stop();
    upstream?.server.close();
  });

  const through = (headers: Record<string, string>) => fetch(`${nginx.url}/orders`, { headers });

  it("passes a valid token, and the upstream sees the principal in X-Identity-* headers, not the client's copies", async () => {
    const account = await t.signUp("authz");
    const res = await through({ authorization: `Bearer ${account.tokens.accessToken}`, "x-identity-user-id": "00000000-0000-4000-8000-000000000000", "x-identity-role": "admin" });
    expect(res.status, nginx.errorLog()).toBe(200);
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers).toMatchObject({
      "x-identity-subject-kind": "user",
      "x-identity-user-id": account.userId,
      "x-identity-session-id": account.tokens.sessionId,
      "x-identity-role": "user",
      "x-identity-amr": "pwd",
    });
    expect(headers["x-identity-service"]).toBeUndefined();
  });

  it("refuses no token, a forged identity header alone, and a bad token, with WWW-Authenticate", async () => {
    const account = await t.signUp("authz-bad");
    const [h, p] = account.tokens.accessToken.split(".");
    const cases: Array<[Record<string, string>, string]> = [
      [{}, 'Bearer realm="identity"'],
      [{ "x-identity-user-id": account.userId }, 'Bearer realm="identity"'],
      [{ authorization: `Bearer ${h}.${p}.AAAA` }, 'Bearer realm="identity", error="invalid_token"'],
      [{ authorization: "Bearer garbage" }, 'Bearer realm="identity", error="invalid_token"'],
      [{ authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }, 'Bearer realm="identity"'],
    ];
    for (const [headers, challenge] of cases) {
      const res = await through(headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe(challenge);
    }
  });

  it("refuses a token within 1 s of its logout", async () => {
    const account = await t.signUp("authz-logout");
    const headers = { authorization: `Bearer ${account.tokens.accessToken}` };
    expect((await through(headers)).status).toBe(200);
    await t.clients("grpc").auth.logout({}, bearer(account.tokens.accessToken));
    const loggedOut = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - loggedOut < 1_000) status = (await through(headers)).status;
    expect(status).toBe(401);
  });
});

describe("GET /authz callers", () => {
  const t = setupService({ env: PRODUCTION });

  it("refuses a caller that is neither a trusted proxy nor holds a service key", async () => {
    const account = await t.signUp("authz-direct");
    const headers = { authorization: `Bearer ${account.tokens.accessToken}` };
    const anonymous = await fetch(`${t.httpUrl}/authz`, { headers });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ reason: "SERVICE_KEY_REQUIRED" });
    expect(anonymous.headers.get("x-identity-user-id")).toBeNull();
    const wrongKey = await fetch(`${t.httpUrl}/authz`, { headers: { ...headers, "x-service-key": "not-the-key-0123456789abcdef0123456789" } });
    expect([401, 403]).toContain(wrongKey.status);
    expect(wrongKey.headers.get("x-identity-user-id")).toBeNull();
    const withServiceKey = await fetch(`${t.httpUrl}/authz`, { headers: { ...headers, ...withKey } });
    expect(withServiceKey.status).toBe(200);
    expect(withServiceKey.headers.get("x-identity-user-id")).toBe(account.userId);
  });

  it("answers only GET and HEAD", async () => {
    const res = await fetch(`${t.httpUrl}/authz`, { method: "POST", headers: withKey });
    expect(res.status).toBe(405);
  });
});

describe("GET /authz from a peer in TRUSTED_PROXIES", () => {
  const t = setupService({ env: { ...PRODUCTION, TRUSTED_PROXIES: "127.0.0.1/32" } });

  it("needs no service key", async () => {
    const account = await t.signUp("authz-proxy");
    const res = await fetch(`${t.httpUrl}/authz`, { headers: { authorization: `Bearer ${account.tokens.accessToken}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-identity-user-id")).toBe(account.userId);
  });
});
