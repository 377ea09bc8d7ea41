// The public gateway's answers to requests that are not well formed, what it lets caches keep,
// what it no longer serves, and whose origin it trusts (issue 10: items 6, 9, 10, 11, 15).
import http from "node:http";
import zlib from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { generateSync } from "otplib";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { uniqueEmail } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { setupService } from "../support/setup.js";

const PASSWORD = "a long enough passphrase";

const t = setupService();

type GatewayProtocol = "connect" | "grpc-web";
const protocols: GatewayProtocol[] = ["connect", "grpc-web"];

function gateway(protocol: GatewayProtocol, options: { sendCompression?: typeof compressionGzip; compressMinBytes?: number } = {}): Transport {
  const common = { baseUrl: t.httpUrl, httpVersion: "1.1" as const, ...options };
  return protocol === "connect" ? createConnectTransport(common) : createGrpcWebTransport(common);
}

/** A raw POST to an RPC path: status, headers and body as received. */
async function post(path: string, headers: Record<string, string>, body: Uint8Array | string) {
  const res = await fetch(`${t.httpUrl}${path}`, { method: "POST", headers, body: typeof body === "string" ? body : Buffer.from(body) });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** The ErrorInfo reasons of a Connect unary error body. */
function connectReasons(body: Buffer): string[] {
  const parsed = JSON.parse(body.toString()) as { details?: { type: string; value: string }[] };
  return (parsed.details ?? []).filter((d) => d.type === "google.rpc.ErrorInfo").map((d) => fromBinary(ErrorInfoSchema, base64Decode(d.value)).reason);
}

/** grpc-status and the ErrorInfo reasons of a gRPC-web answer's trailer frame. */
function grpcWebTrailer(body: Buffer): { status: string | undefined; reasons: string[] } {
  expect(body[0], "a trailer frame").toBe(0x80);
  const text = body.subarray(5, 5 + body.readUInt32BE(1)).toString("latin1");
  const fields = Object.fromEntries(text.split("\r\n").filter((l) => l !== "").map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  const details = fields["grpc-status-details-bin"];
  // google.rpc.Status: field 3 holds Any; reading the ErrorInfo out of it with a regex is enough here.
  const reasons = details ? [...Buffer.from(details, "base64").toString("latin1").matchAll(/google\.rpc\.ErrorInfo\x12.\x0a.([A-Z_]+)/gs)].map((m) => m[1]!) : [];
  return { status: fields["grpc-status"], reasons };
}

function frame(flags: number, data: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(data.length, 1);
  return Buffer.concat([header, data]);
}

const logSince = (from: number) => t.logLines.slice(from);

describe("request encodings the gateway does not take (item 6)", () => {
  const signUpJson = (email: string) => JSON.stringify({ email, password: PASSWORD });
  const connectJson = { "content-type": "application/json", "connect-protocol-version": "1" };

  it("Connect: content-encoding br is UNIMPLEMENTED with ErrorInfo UNSUPPORTED_ENCODING, naming gzip as accepted; nothing is stored", async () => {
    const from = t.logLines.length;
    const res = await t.expectUnchanged(() =>
      post("/identity.v1.AuthService/SignUp", { ...connectJson, "content-encoding": "br" }, zlib.brotliCompressSync(signUpJson(uniqueEmail("br-connect")))),
    );
    expect(res.status).toBe(501);
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: "unimplemented" });
    expect(connectReasons(res.body)).toEqual(["UNSUPPORTED_ENCODING"]);
    expect(JSON.parse(res.body.toString()).message).toContain("supported encodings are gzip");
    const lines = logSince(from);
    expect(lines.filter((l) => l.includes('"rpc refused"') && l.includes('"reason":"UNSUPPORTED_ENCODING"') && l.includes('"level":"info"'))).toHaveLength(1);
    expect(lines.some((l) => l.includes('"rpc failed"'))).toBe(false);
  });

  it.each(protocols)("a %s client sending br gets UNIMPLEMENTED / UNSUPPORTED_ENCODING; with gzip the call goes through", async (protocol) => {
    // compressMinBytes 0: every request message goes compressed.
    const brotli = createClient(AuthService, gateway(protocol, { sendCompression: compressionBrotli, compressMinBytes: 0 }));
    const email = uniqueEmail(`br-${protocol}`);
    await t.expectUnchanged(() => expectError(brotli.signUp({ email, password: PASSWORD }), { code: Code.Unimplemented, reason: "UNSUPPORTED_ENCODING" }));
    const gzip = createClient(AuthService, gateway(protocol, { sendCompression: compressionGzip, compressMinBytes: 0 }));
    const created = await gzip.signUp({ email, password: PASSWORD });
    expect(created.user?.email).toBe(email);
  });

  it("gRPC-web: a frame flagged compressed without grpc-encoding is INVALID_ARGUMENT (never INTERNAL) with ErrorInfo MALFORMED_FRAME, logged as a refusal, not a failure", async () => {
    const from = t.logLines.length;
    const message = Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]); // SignUpRequest{email: "abc"}
    const res = await t.expectUnchanged(() =>
      post("/identity.v1.AuthService/SignUp", { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, frame(0x01, message)),
    );
    expect(res.status).toBe(200);
    expect(grpcWebTrailer(res.body)).toEqual({ status: String(Code.InvalidArgument), reasons: ["MALFORMED_FRAME"] });
    const lines = logSince(from);
    expect(lines.filter((l) => l.includes('"rpc refused"') && l.includes('"reason":"MALFORMED_FRAME"') && l.includes('"protocol":"grpc-web"'))).toHaveLength(1);
    expect(lines.some((l) => l.includes('"rpc failed"') || l.includes('"level":"error"'))).toBe(false);
  });

  it.each([
    ["a binary message that does not parse", {}, Buffer.from([0xff, 0xff, 0xff])],
    ["gzip bytes cut short", { "content-encoding": "gzip" }, zlib.gzipSync(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63])).subarray(0, 12)],
  ])("Connect: %s is INVALID_ARGUMENT (never INTERNAL) with ErrorInfo MALFORMED_FRAME, not a server failure", async (_name, headers, body) => {
    const from = t.logLines.length;
    const res = await post("/identity.v1.AuthService/SignUp", { "content-type": "application/proto", "connect-protocol-version": "1", ...headers }, body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString()).code).toBe("invalid_argument");
    expect(connectReasons(res.body)).toEqual(["MALFORMED_FRAME"]);
    expect(logSince(from).filter((l) => l.includes('"rpc refused"') && l.includes('"reason":"MALFORMED_FRAME"'))).toHaveLength(1);
    expect(logSince(from).some((l) => l.includes('"rpc failed"'))).toBe(false);
  });

  it("gRPC-web: grpc-encoding br is UNIMPLEMENTED with ErrorInfo UNSUPPORTED_ENCODING", async () => {
    const message = zlib.brotliCompressSync(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]));
    const res = await post("/identity.v1.AuthService/SignUp", { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-encoding": "br" }, frame(0x01, message));
    expect(grpcWebTrailer(res.body)).toEqual({ status: String(Code.Unimplemented), reasons: ["UNSUPPORTED_ENCODING"] });
  });
});

describe("errors raised before the handler carry an ErrorInfo too (item 15)", () => {
  const connectJson = { "content-type": "application/json", "connect-protocol-version": "1" };

  it.each([
    ["malformed JSON", "{not json"],
    ["a field of the wrong type", JSON.stringify({ identifier: 5, password: "decode-secret-password-1" })],
    ["an object for a string", JSON.stringify({ identifier: { nested: "decode-secret-identifier" }, password: "x" })],
  ])("Connect: %s is INVALID_ARGUMENT with ErrorInfo INVALID_ARGUMENT, and the log keeps no request value", async (_name, body) => {
    const from = t.logLines.length;
    const res = await post("/identity.v1.AuthService/Login", connectJson, body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: "invalid_argument" });
    expect(connectReasons(res.body)).toEqual(["INVALID_ARGUMENT"]);
    const lines = logSince(from);
    expect(lines.filter((l) => l.includes('"rpc refused"') && l.includes('"reason":"INVALID_ARGUMENT"'))).toHaveLength(1);
    expect(lines.join("\n")).not.toMatch(/decode-secret/);
  });

  it("gRPC-web JSON that does not decode is INVALID_ARGUMENT with ErrorInfo INVALID_ARGUMENT", async () => {
    const res = await post("/identity.v1.AuthService/Login", { "content-type": "application/grpc-web+json", "x-grpc-web": "1" }, frame(0, Buffer.from("{nope")));
    expect(grpcWebTrailer(res.body)).toEqual({ status: String(Code.InvalidArgument), reasons: ["INVALID_ARGUMENT"] });
  });

  it.each(protocols)("%s: an oversized message is RESOURCE_EXHAUSTED with ErrorInfo RESOURCE_EXHAUSTED", async (protocol) => {
    const auth = createClient(AuthService, gateway(protocol));
    await expectError(auth.signUp({ email: uniqueEmail(`big-${protocol}`), password: PASSWORD, displayName: "x".repeat(100 * 1024) }), {
      code: Code.ResourceExhausted,
      reason: "RESOURCE_EXHAUSTED",
    });
  });

  it("an error from the handler keeps its own ErrorInfo (one, not two) and its single rpc log line", async () => {
    const from = t.logLines.length;
    const res = await post("/identity.v1.AuthService/Login", connectJson, JSON.stringify({ identifier: "nobody-here@example.com", password: PASSWORD }));
    expect(connectReasons(res.body)).toEqual(["INVALID_CREDENTIALS"]);
    expect(logSince(from).some((l) => l.includes('"rpc refused"'))).toBe(false);
  });
});

describe.each(protocols)("Cache-Control: no-store on token-bearing answers over %s (item 9)", (protocol) => {
  const auth = () => createClient(AuthService, gateway(protocol));
  /** Call options recording the answer's caching headers. */
  const recorded = (headers: Record<string, string> = {}) => {
    const seen: { cacheControl: string | null; pragma: string | null } = { cacheControl: null, pragma: null };
    return {
      seen,
      options: {
        headers,
        onHeader: (h: Headers) => {
          seen.cacheControl = h.get("cache-control");
          seen.pragma = h.get("pragma");
        },
      },
    };
  };
  const noStore = { cacheControl: "no-store", pragma: "no-cache" };

  it("Login and RefreshToken", async () => {
    const email = uniqueEmail(`cache-${protocol}`);
    await auth().signUp({ email, password: PASSWORD });
    const login = recorded();
    const res = await auth().login({ identifier: email, password: PASSWORD }, login.options);
    if (res.result.case !== "tokens") throw new Error("expected tokens");
    expect(login.seen).toEqual(noStore);
    const refresh = recorded();
    await createClient(TokenService, gateway(protocol)).refreshToken({ refreshToken: res.result.value.refreshToken }, refresh.options);
    expect(refresh.seen).toEqual(noStore);
  });

  it("VerifyOtp", async () => {
    const otp = createClient(OtpService, gateway(protocol));
    const email = uniqueEmail(`cache-otp-${protocol}`);
    const target = { channel: OtpChannel.EMAIL, destination: email, purpose: OtpPurpose.LOGIN };
    await otp.sendOtp(target);
    const verify = recorded();
    const res = await otp.verifyOtp({ ...target, code: t.outbox.lastCode(email) }, verify.options);
    expect(res.result.case).toBe("tokens");
    expect(verify.seen).toEqual(noStore);
  });

  it("SetupTotp and VerifyMfa", async () => {
    const email = uniqueEmail(`cache-mfa-${protocol}`);
    const created = await auth().signUp({ email, password: PASSWORD });
    const mfa = createClient(MfaService, gateway(protocol));
    const bearer = { authorization: `Bearer ${created.tokens!.accessToken}` };
    const setup = recorded(bearer);
    const secret = (await mfa.setupTotp({}, setup.options)).secret;
    expect(setup.seen).toEqual(noStore);
    const now = Math.floor(Date.now() / 1000);
    await mfa.confirmTotp({ code: generateSync({ secret, epoch: now }) }, { headers: bearer });
    const challenged = await auth().login({ identifier: email, password: PASSWORD });
    if (challenged.result.case !== "mfaChallenge") throw new Error("expected a challenge");
    const verify = recorded();
    const passed = await mfa.verifyMfa(
      { challengeToken: challenged.result.value.challengeToken, code: { case: "totpCode", value: generateSync({ secret, epoch: now + 30 }) } },
      verify.options,
    );
    expect(passed.tokens?.accessToken).not.toBe("");
    expect(verify.seen).toEqual(noStore);
  });

  it("error answers too", async () => {
    const error = await expectError(auth().login({ identifier: "nobody-cache@example.com", password: PASSWORD }), { code: Code.Unauthenticated });
    expect({ cacheControl: error.metadata.get("cache-control"), pragma: error.metadata.get("pragma") }).toEqual(noStore);
  });
});

describe("metrics are not on the public gateway (item 10)", () => {
  it("GET /metrics on the gateway is 404", async () => {
    const res = await fetch(`${t.httpUrl}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain("identity_rpc_requests_total");
  });

  it("the metrics listener serves GET /metrics and nothing else", async () => {
    const res = await fetch(t.metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toContain("identity_rpc_requests_total");
    const base = t.metricsUrl.replace(/\/metrics$/, "");
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    expect((await fetch(`${base}/identity.v1.TokenService/GetJwks`, { method: "POST", body: "{}" })).status).toBe(404);
    expect((await fetch(t.metricsUrl, { method: "POST" })).status).toBe(405);
  });
});

describe("the gateway's own origin without PUBLIC_URL: loopback Host names only (item 11)", () => {
  /** A Connect GetJwks call with a chosen Host and Origin (fetch cannot set Host). */
  function callWith(host: string, origin: string): Promise<number> {
    const url = new URL(t.httpUrl);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          hostname: url.hostname,
          port: url.port,
          method: "POST",
          path: "/identity.v1.TokenService/GetJwks",
          headers: { host, origin, "content-type": "application/json", "connect-protocol-version": "1" },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end("{}");
    });
  }

  it("a DNS-rebound name whose Origin matches its Host is refused with 403", async () => {
    const port = new URL(t.httpUrl).port;
    expect(await callWith(`rebind.example:${port}`, `http://rebind.example:${port}`)).toBe(403);
    expect(await callWith("attacker.example", "http://attacker.example")).toBe(403);
    expect(await callWith("10.0.0.5:8080", "http://10.0.0.5:8080")).toBe(403);
  });

  it("localhost, 127.x.x.x and [::1] with their own origin are still served", async () => {
    const port = new URL(t.httpUrl).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `127.1.2.3:${port}`, `[::1]:${port}`, "localhost"]) {
      expect(await callWith(host, `http://${host}`), host).toBe(200);
    }
  });

  it("the refusal is a Connect error with ErrorInfo ORIGIN_NOT_ALLOWED (item 15: every error carries one)", async () => {
    const auth = createClient(AuthService, gateway("connect"));
    await t.expectUnchanged(() =>
      expectError(auth.signUp({ email: uniqueEmail("origin-refused"), password: PASSWORD }, { headers: { origin: "http://evil.example" } }), {
        code: Code.PermissionDenied,
        reason: "ORIGIN_NOT_ALLOWED",
      }),
    );
  });

  it("a loopback Host does not vouch for another Origin", async () => {
    const port = new URL(t.httpUrl).port;
    expect(await callWith(`localhost:${port}`, "http://evil.example")).toBe(403);
  });
});
