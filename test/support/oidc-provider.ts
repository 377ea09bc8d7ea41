// A real OpenID Provider for the federation tests: panva's certified oidc-provider on 127.0.0.1,
// with one confidential test client, accounts the test adds, and the provider's development
// login page (any password; the login names the account). It sits behind a small proxy whose
// address is the issuer, so a test can take the provider down (connections reset) or have the
// token endpoint's ID tokens re-signed with a key the provider never published.
//
//   const op = await startTestOidcProvider({ redirectUris: ["http://app.test/callback"] });
//   op.addAccount("alice", { email: "alice@example.com", email_verified: true });
//   const callback = await op.signIn(authorizationUrl, "alice"); // the redirect back, with code
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from "jose";
import Provider from "oidc-provider";

export interface TestAccountClaims {
  readonly email?: string;
  readonly email_verified?: boolean;
  readonly name?: string;
}

/** normal: a proxy; down: every connection reset; resign: ID tokens re-signed with a foreign key. */
export type ProviderMode = "normal" | "down" | "resign";

export interface TestOidcProvider {
  /** The issuer (the proxy's origin), as OIDC_PROVIDERS names it. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** An OIDC_PROVIDERS entry for this provider. */
  providerConfig(id?: string, name?: string): Record<string, string>;
  mode: ProviderMode;
  /** Requests that reached the provider (through the proxy) so far. */
  readonly requests: string[];
  addAccount(login: string, claims: TestAccountClaims): void;
  /** Follows the authorization URL through the login page as `login`; the URL it redirects back to. */
  signIn(authorizationUrl: string, login: string): Promise<URL>;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startTestOidcProvider(options: { redirectUris: readonly string[] }): Promise<TestOidcProvider> {
  const accounts = new Map<string, TestAccountClaims>();
  const clientId = "identity-test";
  const clientSecret = "identity-test-secret-0123456789abcdef";
  const proxy = createServer();
  const proxyPort = await listen(proxy);
  const issuer = `http://127.0.0.1:${proxyPort}`;
  const foreignKey = await generateKeyPair("RS256");
  // The provider's own signing key (its quick-start default would warn on every start).
  const signing = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(signing.privateKey)), kid: "test-op-key", alg: "RS256", use: "sig" };

  const provider = new Provider(issuer, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [...options.redirectUris], grant_types: ["authorization_code"], response_types: ["code"] }],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    cookies: { keys: ["test-cookie-key-0123456789"] },
    jwks: { keys: [jwk] },
    // Explicit lifetimes (the defaults print a notice each).
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Grant: 3600, Interaction: 600, Session: 3600 },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx: unknown, sub: string) {
      const claims = accounts.get(sub);
      return claims && { accountId: sub, claims: () => ({ sub, ...claims }) };
    },
    // Consent is granted as the client asks (a first-party client): only the login page remains.
    async loadExistingGrant(ctx: { oidc: { client: { clientId: string }; session: { accountId: string; grantIdFor(id: string): string | undefined }; provider: Provider; params: { scope: string } } }) {
      const { client, session } = ctx.oidc;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope);
      await grant.save();
      return grant;
    },
  });
  const server = createServer(provider.callback());
  const providerPort = await listen(server);

  const requests: string[] = [];
  const op: TestOidcProvider = {
    issuer,
    clientId,
    clientSecret,
    mode: "normal",
    requests,
    providerConfig: (id = "test", name = "Test provider") => ({ id, name, issuer, client_id: clientId, client_secret: clientSecret }),
    addAccount: (login, claims) => void accounts.set(login, claims),
    signIn: (url, login) => followLogin(url, login, options.redirectUris),
    async close() {
      await close(proxy);
      await close(server);
    },
  };

  proxy.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (op.mode === "down") {
      req.socket.destroy();
      return;
    }
    requests.push(`${req.method} ${req.url}`);
    const resign = op.mode === "resign" && (req.url ?? "").startsWith("/token");
    const upstream = request({ host: "127.0.0.1", port: providerPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (!resign) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on("data", (c: Buffer) => chunks.push(c));
      answer.on("end", () => {
        void (async () => {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { id_token?: string };
          if (body.id_token) {
            // Same claims and key id, another key: only the signature check can tell.
            const header = decodeProtectedHeader(body.id_token);
            body.id_token = await new SignJWT(decodeJwt(body.id_token)).setProtectedHeader({ alg: "RS256", kid: header.kid }).sign(foreignKey.privateKey);
          }
          const text = JSON.stringify(body);
          const headers = { ...answer.headers, "content-length": String(Buffer.byteLength(text)) };
          res.writeHead(answer.statusCode ?? 502, headers);
          res.end(text);
        })();
      });
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  return op;
}

/** Drives the authorization request as a browser would: redirects, cookies, the login form. */
async function followLogin(authorizationUrl: string, login: string, redirectUris: readonly string[]): Promise<URL> {
  const cookies = new Map<string, string>();
  let url = new URL(authorizationUrl);
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 10; step++) {
    const answer = await fetch(url, {
      method: body ? "POST" : "GET",
      redirect: "manual",
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; "), ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      body,
    });
    for (const line of answer.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const at = pair.indexOf("=");
      cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    body = undefined;
    const location = answer.headers.get("location");
    if (location) {
      const next = new URL(location, url);
      if (redirectUris.some((uri) => next.href.startsWith(uri))) return next;
      url = next;
      continue;
    }
    const html = await answer.text();
    if (answer.status !== 200) throw new Error(`provider answered ${answer.status}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`no form on the provider's page: ${html.slice(0, 300)}`);
    url = new URL(action.replaceAll("&amp;", "&"), url);
    body = html.includes('name="login"')
      ? new URLSearchParams({ prompt: "login", login, password: "any" })
      : new URLSearchParams({ prompt: "consent" });
  }
  throw new Error("the provider never redirected back");
}
