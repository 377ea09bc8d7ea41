// Logs and metrics an operator relies on: one structured line per RPC with its request id and
// user, no secret anywhere in the log, and Prometheus metrics for both transports.
import { ConnectError } from "@connectrpc/connect";
import { generateSync } from "otplib";
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { lastTextedCode, startWebhook } from "../support/delivery-servers.js";
import { prepared, setupService } from "../support/setup.js";
import { TEST_KEK, TEST_SERVICE_KEY } from "../support/service.js";
import { accountWithKey } from "../support/service-accounts.js";

const webhook = prepared(startWebhook, (server) => server.close());
const t = setupService(() => ({ env: { OTP_SMS_PROVIDER: "webhook", SMS_WEBHOOK_URL: webhook().url, SMS_WEBHOOK_SECRET: "webhook-bearer-secret-0123456789" } }));

it("never writes a password, token, code, TOTP secret, backup code or key to the log", async () => {
  const { auth, tokens, otp, mfa } = t.clients("grpc");
  const secrets: string[] = [TEST_SERVICE_KEY, TEST_KEK.toString("base64"), "webhook-bearer-secret-0123456789"];

  const password = "correct horse battery staple";
  const newPassword = "another long passphrase 42";
  secrets.push(password, newPassword);
  const signUp = await auth.signUp({ email: "logs@example.com", phone: "+14155550199", password });
  secrets.push(signUp.tokens!.accessToken, signUp.tokens!.refreshToken);
  await auth.login({ identifier: "logs@example.com", password: "wrong password guess" }).catch(() => undefined);
  secrets.push("wrong password guess");
  const login = await auth.login({ identifier: "logs@example.com", password });
  const pair = login.result.case === "tokens" ? login.result.value : undefined;
  secrets.push(pair!.accessToken, pair!.refreshToken);
  const refreshed = await tokens.refreshToken({ refreshToken: pair!.refreshToken });
  secrets.push(refreshed.tokens!.accessToken, refreshed.tokens!.refreshToken);
  await tokens.refreshToken({ refreshToken: pair!.refreshToken }).catch(() => undefined); // reuse
  await tokens.verifyToken({ token: signUp.tokens!.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
  await tokens.verifyToken({ token: signUp.tokens!.accessToken }, { headers: { "x-service-key": "a-wrong-service-key-0123456789abcdef" } }).catch(() => undefined);
  secrets.push("a-wrong-service-key-0123456789abcdef");
  // A service account's key (CLI output aside, it is never shown again): in both headers, and
  // with a wrong secret behind its (public) prefix.
  const named = await accountWithKey(t, "logs-billing", ["tokens.verify"]);
  const wrongSecret = `${named.key.slice(0, -43)}${"Q".repeat(43)}`;
  await tokens.verifyToken({ token: signUp.tokens!.accessToken }, { headers: { "x-service-key": named.key } });
  await tokens.verifyToken({ token: signUp.tokens!.accessToken }, { headers: { authorization: `Bearer ${named.key}` } });
  await tokens.verifyToken({ token: signUp.tokens!.accessToken }, { headers: { "x-service-key": wrongSecret } }).catch(() => undefined);
  secrets.push(named.key, named.key.slice(-43), wrongSecret.slice(-43));

  // A phone nobody owns yet: the code signs a new account up.
  await otp.sendOtp({ channel: OtpChannel.SMS, destination: "+14155550188", purpose: OtpPurpose.LOGIN });
  const code = lastTextedCode(webhook(), "+14155550188");
  const otpLogin = await otp.verifyOtp({ channel: OtpChannel.SMS, destination: "+14155550188", purpose: OtpPurpose.LOGIN, code });
  secrets.push(otpLogin.result.case === "tokens" ? otpLogin.result.value.refreshToken : "");

  const bearer = { headers: { authorization: `Bearer ${signUp.tokens!.accessToken}` } };
  const setup = await mfa.setupTotp({}, bearer);
  secrets.push(setup.secret);
  const totp = generateSync({ secret: setup.secret });
  const { backupCodes } = await mfa.confirmTotp({ code: totp }, bearer);
  secrets.push(...backupCodes);
  await auth.changePassword({ currentPassword: password, newPassword }, bearer);

  const log = t.logLines.join("\n");
  expect(t.logLines.length).toBeGreaterThan(10);
  for (const secret of secrets.filter((s) => s.length >= 6)) {
    expect(log.includes(secret), `log contains a secret (${secret.slice(0, 4)}…)`).toBe(false);
  }
  // Six-digit codes are short enough to appear by chance in ids; look for them as values.
  expect(log).not.toMatch(new RegExp(`[":= ]${code}["\\s,}]`));
  expect(log).not.toMatch(new RegExp(`[":= ]${totp}["\\s,}]`));
});

it("logs one line per RPC with its request id, status and user, and returns the request id", async () => {
  const { auth } = t.clients("connect");
  const signUp = await auth.signUp({ username: "observed", password: "a long enough passphrase" });
  let returned: string | null = null;
  await auth.whoAmI({}, {
    headers: { authorization: `Bearer ${signUp.tokens!.accessToken}`, "x-request-id": "req-12345" },
    onHeader: (headers) => (returned = headers.get("x-request-id")),
  });
  expect(returned).toBe("req-12345");
  const lines = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.requestId === "req-12345");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ msg: "rpc", rpc: "identity.v1.AuthService/WhoAmI", status: "OK", protocol: "connect", userId: signUp.user!.id });
  expect(typeof lines[0]!.ms).toBe("number");

  // Without one, the service makes one up and returns it, over grpc too.
  let generated: string | null = null;
  await t.clients("grpc").auth.login({ identifier: "observed", password: "a long enough passphrase" }, { onHeader: (h) => (generated = h.get("x-request-id")) });
  expect(generated).toMatch(/^[0-9a-f-]{36}$/);
  expect(t.logLines.filter((l) => l.includes(generated!))).toHaveLength(1);

  // A failed call returns its request id too (in the trailers on gRPC), to find its log line.
  const failure = await t.clients("grpc").auth.whoAmI({}, { headers: { "x-request-id": "req-failed-1" } }).then(
    () => undefined,
    (err: unknown) => ConnectError.from(err),
  );
  expect(failure?.metadata.get("x-request-id")).toBe("req-failed-1");
  expect(t.logLines.filter((l) => l.includes('"requestId":"req-failed-1"') && l.includes('"status":"Unauthenticated"'))).toHaveLength(1);
});

it("serves Prometheus metrics for both transports and the domain counters", async () => {
  const body = await (await fetch(t.metricsUrl)).text();
  expect(body).toMatch(/identity_rpc_requests_total\{service="identity.v1.AuthService",method="SignUp",code="OK",transport="grpc",caller="anonymous"\} \d+/);
  expect(body).toMatch(/identity_rpc_requests_total\{service="identity.v1.AuthService",method="SignUp",code="OK",transport="connect",caller="anonymous"\} \d+/);
  expect(body).toMatch(/identity_rpc_duration_seconds_bucket\{le="0.005",service="identity.v1.TokenService",method="VerifyToken"/);
  expect(body).toMatch(/identity_logins_total\{method="Login",outcome="success"\} \d+/);
  expect(body).toMatch(/identity_logins_total\{method="Login",outcome="INVALID_CREDENTIALS"\} 1/);
  expect(body).toMatch(/identity_verify_token_total\{result="active"\} \d+/);
  expect(body).toMatch(/identity_refresh_token_reuse_total 1/);
  expect(body).toMatch(/identity_otp_sends_total\{channel="SMS",result="sent"\} 1/);
  // The pool's gauges are metrics of their own: none is the sum of the others' series.
  expect(body).toMatch(/^identity_db_pool_connections [1-9]\d*$/m);
  expect(body).toMatch(/^identity_db_pool_idle_connections \d+$/m);
  expect(body).toMatch(/^identity_db_pool_waiting_requests 0$/m);
  expect(body).not.toMatch(/state="total"/);
  const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  expect(body).toContain(`identity_build_info{version="${version}",node="${process.version}"} 1`);
  expect(body).toMatch(/^identity_revocation_listener_up 1$/m);
  expect(body).toMatch(/^identity_password_hashing_queue_depth 0$/m);
  // A fresh database's first key has signed since the service started: a few seconds old at most.
  const age = Number(/^identity_signing_key_age_seconds (\S+)$/m.exec(body)?.[1]);
  expect(age).toBeGreaterThanOrEqual(0);
  expect(age).toBeLessThan(600);
  expect(body).toMatch(/process_resident_memory_bytes \d+/);
});
