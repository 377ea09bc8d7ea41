// Browser token handling on the gateway, without a browser: a call with a trusted Origin header
// is a browser call and gets its refresh token only as an HttpOnly cookie (SignUp, Login,
// VerifyOtp, VerifyMfa, RefreshToken), RefreshToken and RevokeToken take it from the cookie,
// Logout and RevokeToken delete it; every other caller keeps the message contract. Also: the
// refusal of untrusted origins, PUBLIC_URL's `__Host-` cookie, the app's static files and
// security headers, and the development outbox (absent in production).
import http from "node:http";
import { Code, createClient, type CallOptions, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { browserSession, readCookie } from "../../src/server/refresh-cookie.js";
import { CONTENT_SECURITY_POLICY } from "../../src/server/web-app.js";
import { uniqueEmail } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { TEST_KEK, TEST_SERVICE_KEYS } from "../support/service.js";
import { consoleMessages, lastLoggedCode } from "../support/outbox.js";
import { setupService, withService } from "../support/setup.js";

const PASSWORD = "a long enough passphrase";
const ALLOWED = "http://allowed.example"; // the test service's CORS_ORIGINS
const COOKIE = /^identity-refresh=([\w-]{43}); Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=(\d+)$/;
const CLEARED = "identity-refresh=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0";

const t = setupService();

type GatewayProtocol = "connect" | "grpc-web";

function gateway(protocol: GatewayProtocol, baseUrl = t.httpUrl): Transport {
  return protocol === "connect" ? createConnectTransport({ baseUrl, httpVersion: "1.1" }) : createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
}

/** Call options with the given request headers, recording the response's Set-Cookie. */
function recorded(headers: Record<string, string>) {
  const seen: { setCookie: string | null } = { setCookie: null };
  const options: CallOptions = { headers, onHeader: (h) => (seen.setCookie = h.get("set-cookie")) };
  return { options, seen };
}

/** The refresh token a Set-Cookie value stores, checking every attribute. */
function storedToken(setCookie: string | null): string {
  const match = COOKIE.exec(setCookie ?? "");
  expect(match, `Set-Cookie "${setCookie}"`).not.toBeNull();
  // Max-Age is the refresh token's idle lifetime.
  expect(Number(match![2])).toBeGreaterThan(t.config.refreshTokenIdleTtlSec - 60);
  expect(Number(match![2])).toBeLessThanOrEqual(t.config.refreshTokenIdleTtlSec);
  return match![1]!;
}

const browser = (cookie?: string) => ({ origin: ALLOWED, ...(cookie ? { cookie: `theme=dark; identity-refresh=${cookie}` } : {}) });

describe.each<GatewayProtocol>(["connect", "grpc-web"])("browser calls over %s", (protocol) => {
  const auth = () => createClient(AuthService, gateway(protocol));
  const tokens = () => createClient(TokenService, gateway(protocol));

  it("SignUp and Login: the refresh token only in an HttpOnly, Secure, SameSite=Strict cookie", async () => {
    const email = uniqueEmail(`cookie-${protocol}`);
    const signUp = recorded(browser());
    const created = await auth().signUp({ email, password: PASSWORD }, signUp.options);
    expect(created.tokens?.accessToken).not.toBe("");
    expect(created.tokens?.refreshToken).toBe("");
    expect(created.tokens?.refreshTokenExpireTime).toBeDefined();
    storedToken(signUp.seen.setCookie);

    const login = recorded(browser());
    const res = await auth().login({ identifier: email, password: PASSWORD }, login.options);
    if (res.result.case !== "tokens") throw new Error("expected tokens");
    expect(res.result.value.refreshToken).toBe("");
    storedToken(login.seen.setCookie);
  });

  it("RefreshToken takes the cookie when the message has none, rotates it, and a spent one is refused", async () => {
    const first = recorded(browser());
    await auth().signUp({ email: uniqueEmail(`refresh-${protocol}`), password: PASSWORD }, first.options);
    const spent = storedToken(first.seen.setCookie);

    const refresh = recorded(browser(spent));
    const res = await tokens().refreshToken({}, refresh.options);
    expect(res.tokens?.accessToken).not.toBe("");
    expect(res.tokens?.refreshToken).toBe("");
    const rotated = storedToken(refresh.seen.setCookie);
    expect(rotated).not.toBe(spent);

    await expectError(tokens().refreshToken({}, { headers: browser(spent) }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_REUSED" });
    // Reuse ended the whole session: the rotated cookie is dead too.
    await expectError(tokens().refreshToken({}, { headers: browser(rotated) }), { code: Code.Unauthenticated });
  });

  it("RefreshToken without a cookie or a token is INVALID_ARGUMENT", async () => {
    await expectError(tokens().refreshToken({}, { headers: browser() }), { code: Code.InvalidArgument, fields: ["refresh_token"] });
  });

  it("Logout deletes the cookie", async () => {
    const signUp = recorded(browser());
    const created = await auth().signUp({ email: uniqueEmail(`logout-${protocol}`), password: PASSWORD }, signUp.options);
    const cookie = storedToken(signUp.seen.setCookie);
    const logout = recorded({ ...browser(cookie), authorization: `Bearer ${created.tokens!.accessToken}` });
    await auth().logout({}, logout.options);
    expect(logout.seen.setCookie).toBe(CLEARED);
    await expectError(tokens().refreshToken({}, { headers: browser(cookie) }), { code: Code.Unauthenticated });
  });

  it("RevokeToken with an empty token revokes the cookie's session and deletes the cookie", async () => {
    const signUp = recorded(browser());
    await auth().signUp({ email: uniqueEmail(`revoke-${protocol}`), password: PASSWORD }, signUp.options);
    const cookie = storedToken(signUp.seen.setCookie);
    const revoke = recorded(browser(cookie));
    await tokens().revokeToken({}, revoke.options);
    expect(revoke.seen.setCookie).toBe(CLEARED);
    await expectError(tokens().refreshToken({}, { headers: browser(cookie) }), { code: Code.Unauthenticated });
  });

  it("RevokeToken of another session leaves the browser's cookie alone", async () => {
    const email = uniqueEmail(`revoke-other-${protocol}`);
    const signUp = recorded(browser());
    await auth().signUp({ email, password: PASSWORD }, signUp.options);
    const cookie = storedToken(signUp.seen.setCookie);
    const other = await auth().login({ identifier: email, password: PASSWORD }); // not a browser: token in the body
    if (other.result.case !== "tokens") throw new Error("expected tokens");
    const revoke = recorded(browser(cookie));
    await tokens().revokeToken({ token: other.result.value.refreshToken }, revoke.options);
    expect(revoke.seen.setCookie).toBeNull();
    const refresh = recorded(browser(cookie));
    await tokens().refreshToken({}, refresh.options);
    storedToken(refresh.seen.setCookie);
  });

  it("VerifyOtp answers a browser with the cookie", async () => {
    const otp = createClient(OtpService, gateway(protocol));
    const email = uniqueEmail(`otp-${protocol}`);
    const target = { channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN };
    await otp.sendOtp(target, { headers: browser() });
    const verify = recorded(browser());
    const signedIn = await otp.verifyOtp({ ...target, code: t.outbox.lastCode(email) }, verify.options);
    if (signedIn.result.case !== "tokens") throw new Error("expected tokens");
    expect(signedIn.result.value.refreshToken).toBe("");
    storedToken(verify.seen.setCookie);
  });

  it("VerifyMfa answers a browser with the cookie (and the challenge step sets none)", async () => {
    const email = uniqueEmail(`mfa-${protocol}`);
    const created = await auth().signUp({ email, password: PASSWORD });
    const mfa = createClient(MfaService, gateway(protocol));
    const bearer = { headers: { authorization: `Bearer ${created.tokens!.accessToken}` } };
    const setup = await mfa.setupTotp({}, bearer);
    const now = Math.floor(Date.now() / 1000);
    await mfa.confirmTotp({ code: generateSync({ secret: setup.secret, epoch: now }) }, bearer);

    const login = recorded(browser());
    const challenged = await auth().login({ identifier: email, password: PASSWORD }, login.options);
    if (challenged.result.case !== "mfaChallenge") throw new Error("expected a challenge");
    expect(login.seen.setCookie).toBeNull();
    const second = recorded(browser());
    const code = generateSync({ secret: setup.secret, epoch: now + 30 }); // the next step: confirmation spent this one
    const passed = await mfa.verifyMfa({ challengeToken: challenged.result.value.challengeToken, code: { case: "totpCode", value: code } }, second.options);
    expect(passed.tokens?.refreshToken).toBe("");
    storedToken(second.seen.setCookie);
  });

  it("the gateway's own origin (from the Host header) is trusted like CORS_ORIGINS", async () => {
    const call = recorded({ origin: t.httpUrl });
    const created = await auth().signUp({ email: uniqueEmail(`own-origin-${protocol}`), password: PASSWORD }, call.options);
    expect(created.tokens?.refreshToken).toBe("");
    storedToken(call.seen.setCookie);
  });

  it("a call from an origin that is not trusted is refused before any handler runs", async () => {
    const email = uniqueEmail(`evil-${protocol}`);
    await expectError(auth().signUp({ email, password: PASSWORD }, { headers: { origin: "http://evil.example" } }), { code: Code.PermissionDenied });
    const [row] = (await t.db.query(`SELECT count(*)::int AS n FROM users WHERE email = $1`, [email])) as Array<{ n: number }>;
    expect(row!.n).toBe(0);
  });
});

describe("every other caller keeps the message contract", () => {
  it.each<GatewayProtocol>(["connect", "grpc-web"])("a gateway client without Origin gets the refresh token in the body and no cookie (%s)", async (protocol) => {
    const signUp = recorded({});
    const created = await createClient(AuthService, gateway(protocol)).signUp({ email: uniqueEmail(`plain-${protocol}`), password: PASSWORD }, signUp.options);
    expect(created.tokens?.refreshToken).toMatch(/^[\w-]{43}$/);
    expect(signUp.seen.setCookie).toBeNull();
    // A cookie without Origin is not a browser's: RefreshToken ignores it.
    await expectError(
      createClient(TokenService, gateway(protocol)).refreshToken({}, { headers: { cookie: `identity-refresh=${created.tokens!.refreshToken}` } }),
      { code: Code.InvalidArgument, fields: ["refresh_token"] },
    );
  });

  it("the gRPC port ignores Origin: the refresh token stays in the body", async () => {
    const signUp = recorded({ origin: ALLOWED });
    const created = await t.clients("grpc").auth.signUp({ email: uniqueEmail("grpc-origin"), password: PASSWORD }, signUp.options);
    expect(created.tokens?.refreshToken).toMatch(/^[\w-]{43}$/);
    expect(signUp.seen.setCookie).toBeNull();
  });
});

describe("the refresh cookie", () => {
  it("reads the named cookie among others, the first when sent twice", () => {
    expect(readCookie("a=1; identity-refresh=abc; b=2", "identity-refresh")).toBe("abc");
    expect(readCookie("identity-refresh=first; identity-refresh=second", "identity-refresh")).toBe("first");
    expect(readCookie("xidentity-refresh=no", "identity-refresh")).toBeUndefined();
    expect(readCookie("identity-refresh=", "identity-refresh")).toBeUndefined();
    expect(readCookie(undefined, "identity-refresh")).toBeUndefined();
  });

  it("lives until the refresh token expires", () => {
    const session = browserSession(undefined, "__Host-identity-refresh", () => 1_000_000);
    expect(session.storeCookie("tok", new Date(1_000_000 + 3_600_000))).toBe(
      "__Host-identity-refresh=tok; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=3600",
    );
    expect(session.clearCookie()).toBe("__Host-identity-refresh=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
  });

  it("PUBLIC_URL must be an origin", () => {
    expect(loadConfig({ PUBLIC_URL: "https://id.example.com/" }).publicUrl).toBe("https://id.example.com");
    expect(loadConfig({}).publicUrl).toBeUndefined();
    for (const bad of ["id.example.com", "ftp://id.example.com", "https://id.example.com/app", "https://id.example.com/?x=1"]) {
      expect(() => loadConfig({ PUBLIC_URL: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ PUBLIC_URL: bad }), bad).toThrow(/PUBLIC_URL/);
    }
  });
});

describe("behind TLS (PUBLIC_URL=https://...)", () => {
  const tls = setupService({ env: { PUBLIC_URL: "https://id.example.com" } });

  it("names the cookie __Host-identity-refresh and trusts the public origin", async () => {
    const call = recorded({ origin: "https://id.example.com" });
    const created = await createClient(AuthService, gateway("connect", tls.httpUrl)).signUp({ email: uniqueEmail("tls"), password: PASSWORD }, call.options);
    expect(created.tokens?.refreshToken).toBe("");
    expect(call.seen.setCookie).toMatch(/^__Host-identity-refresh=[\w-]{43}; Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=\d+$/);
  });

  it("no longer takes the Host header's http origin for its own", async () => {
    await expectError(createClient(AuthService, gateway("connect", tls.httpUrl)).signUp({ email: uniqueEmail("tls-host"), password: PASSWORD }, { headers: { origin: tls.httpUrl } }), {
      code: Code.PermissionDenied,
    });
  });

  it("sends Strict-Transport-Security with the page", async () => {
    const res = await fetch(`${tls.httpUrl}/`);
    expect(res.headers.get("strict-transport-security")).toBe("max-age=31536000");
  });
});

describe("the web app's files", () => {
  it("GET / is the app, under a strict Content-Security-Policy", async () => {
    const res = await fetch(`${t.httpUrl}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).toContain("img-src 'self' data:");
    expect(CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
    expect(CONTENT_SECURITY_POLICY).not.toContain("unsafe");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("strict-transport-security")).toBeNull(); // plain http here
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    expect(html).not.toMatch(/<script>|style="/); // nothing inline: the CSP would refuse it
  });

  it("serves the bundle and the stylesheet with their types, and revalidates by ETag", async () => {
    const js = await fetch(`${t.httpUrl}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await js.text()).length).toBeGreaterThan(10_000);
    const css = await fetch(`${t.httpUrl}/app.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const etag = css.headers.get("etag")!;
    const again = await fetch(`${t.httpUrl}/app.css`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    const head = await fetch(`${t.httpUrl}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });
});

/** GET /dev/outbox with a chosen Host header (fetch cannot set one). */
function getOutbox(baseUrl: string, host?: string): Promise<{ status: number; body: string }> {
  const url = new URL(`${baseUrl}/dev/outbox`);
  return new Promise((resolve, reject) => {
    const req = http.get({ hostname: url.hostname, port: url.port, path: url.pathname, headers: host ? { host } : {} }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
}

describe("the development outbox", () => {
  it("shows what the console provider sent, newest first, to a browser on this machine", async () => {
    const email = uniqueEmail("outbox");
    await createClient(OtpService, gateway("connect")).sendOtp({ channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN });
    const res = await getOutbox(t.httpUrl);
    expect(res.status).toBe(200);
    const { messages } = JSON.parse(res.body) as { messages: Array<{ to: string; channel: string; text: string; subject: string }> };
    expect(messages[0]).toMatchObject({ to: email, channel: "email", subject: "Your sign-in code" });
    // Checked against the log line, not the outbox the endpoint itself serves.
    expect(messages[0]!.text).toContain(lastLoggedCode(t.logLines, email));
    expect(consoleMessages(t.logLines, email)).toHaveLength(1);
  });

  it("is refused to a Host that is not a loopback name (DNS rebinding)", async () => {
    expect((await getOutbox(t.httpUrl, "evil.example:80")).status).toBe(403);
    expect((await getOutbox(t.httpUrl, "localhost")).status).toBe(200);
  });

  it("does not exist in production mode", async () => {
    const production = { env: { NODE_ENV: "production", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), SERVICE_KEYS: TEST_SERVICE_KEYS, PUBLIC_URL: "https://id.example.com" } };
    await withService(production, async (t) => {
      expect((await getOutbox(t.httpUrl)).status).toBe(404);
      expect((await fetch(`${t.httpUrl}/`)).status).toBe(200);
    });
  });
});
