// The browser gateway's own surface (probes, JWKS, CORS, what it refuses to serve) and the
// message-size limit on both ports.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { createLocalJWKSet, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { AuthService, SignUpRequestSchema } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { type TransportName } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const PASSWORD = "a long enough passphrase";

const t = setupService();

const userCount = async (email: string): Promise<number> =>
  (await t.db.query(`SELECT count(*)::int AS n FROM users WHERE lower(email) = lower($1)`, [email]))[0].n;

describe("probes and JWKS", () => {
  it("GET /healthz is 200 ok", async () => {
    const res = await fetch(`${t.httpUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz is 200 ready while the database answers", async () => {
    const res = await fetch(`${t.httpUrl}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ready",
      database: "ok",
      overall: "SERVING",
      services: {
        "identity.v1.AuthService": "SERVING",
        "identity.v1.TokenService": "SERVING",
        "identity.v1.OtpService": "SERVING",
        "identity.v1.MfaService": "SERVING",
        "identity.v1.AdminService": "SERVING",
        "identity.v1.PasskeyService": "SERVING",
        "identity.v1.FederationService": "SERVING",
        "envoy.service.auth.v3.Authorization": "SERVING",
      },
      revocationAgeMs: expect.any(Number),
    });
  });

  it("GET /.well-known/jwks.json publishes the public signing key, and it verifies issued tokens", async () => {
    const res = await fetch(`${t.httpUrl}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    const jwks = (await res.json()) as { keys: Record<string, string>[] };
    expect(jwks.keys).toHaveLength(1);
    const [key] = jwks.keys;
    expect(Object.keys(key!).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
    expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: t.app.services.signingKeys.current().kid });

    const signUp = await t.clients("grpc").auth.signUp({ email: "jwks@example.com", password: PASSWORD });
    const { payload, protectedHeader } = await jwtVerify(signUp.tokens!.accessToken, createLocalJWKSet(jwks as never), {
      issuer: t.config.issuer,
      audience: t.config.audience,
      typ: "at+jwt",
    });
    expect(payload.sub).toBe(signUp.user!.id);
    expect(protectedHeader.kid).toBe(key!.kid);
  });

  it("GetJwks over the gateway answers the same keys", async () => {
    const res = await t.clients("connect").tokens.getJwks({});
    expect(res.keys.map((k) => ({ kty: k.kty, crv: k.crv, x: k.x, kid: k.kid, alg: k.alg, use: k.use }))).toEqual(t.app.services.signingKeys.jwks());
  });

  it("an unknown path is 404", async () => {
    const res = await fetch(`${t.httpUrl}/nope`);
    expect(res.status).toBe(404);
  });
});

describe("CORS", () => {
  const preflight = (origin: string) =>
    fetch(`${t.httpUrl}/identity.v1.AuthService/SignUp`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,x-grpc-web,authorization",
      },
    });

  it("a preflight from a configured origin is allowed", async () => {
    const res = await preflight("http://allowed.example");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://allowed.example");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase().split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(["content-type", "connect-protocol-version", "x-grpc-web", "authorization"]));
    expect(res.headers.get("vary")).toMatch(/origin/i);
  });

  it("a preflight from another origin is not", async () => {
    const res = await preflight("http://evil.example");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
  });

  it("an actual call from the configured origin carries the CORS response headers", async () => {
    const res = await fetch(`${t.httpUrl}/identity.v1.TokenService/GetJwks`, {
      method: "POST",
      headers: { origin: "http://allowed.example", "content-type": "application/json", "connect-protocol-version": "1" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://allowed.example");
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("grpc-status");
  });
});

describe.each<TransportName>(["connect", "grpc-web"])("VerifyToken over the gateway (%s)", (name) => {
  it("is UNIMPLEMENTED, even with a service key and a valid token", async () => {
    const signUp = await t.clients("grpc").auth.signUp({ email: `gateway-verify-${name}@example.com`, password: PASSWORD });
    await expectError(
      t.clients(name).tokens.verifyToken({ token: signUp.tokens!.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } }),
      { code: Code.Unimplemented },
    );
  });
});

describe("message size limit", () => {
  const limit = () => t.config.maxMessageBytes;
  const oversized = (email: string) => ({ email, password: PASSWORD, displayName: "x".repeat(100 * 1024) });

  it("defaults to 64 KiB", () => {
    expect(limit()).toBe(65_536);
  });

  describe.each<TransportName>(["grpc", "connect", "grpc-web"])("over %s", (name) => {
    it("rejects an oversized SignUp with RESOURCE_EXHAUSTED, creates nothing, and keeps serving", async () => {
      const { auth } = t.clients(name);
      const email = `oversized-${name}@example.com`;
      await expectError(auth.signUp(oversized(email)), { code: Code.ResourceExhausted });
      expect(await userCount(email)).toBe(0);

      const ok = await auth.signUp({ email: `after-oversized-${name}@example.com`, password: PASSWORD, displayName: "Fine" });
      expect(ok.user?.displayName).toBe("Fine");
    });
  });

  it("a request just under the limit reaches the handler (and fails validation there, not the transport)", async () => {
    const auth = t.clients("grpc").auth;
    await expectError(auth.signUp({ email: "under-limit@example.com", password: PASSWORD, displayName: "x".repeat(60 * 1024) }), {
      code: Code.InvalidArgument,
      fields: ["display_name"],
    });
  });

  it("a gzip bomb over Connect is measured after decompression", async () => {
    const transport: Transport = createConnectTransport({
      baseUrl: t.httpUrl,
      httpVersion: "1.1",
      sendCompression: compressionGzip,
      compressMinBytes: 1,
    });
    const email = "gzip-bomb-connect@example.com";
    const bomb = { email, password: PASSWORD, displayName: "x".repeat(8 * 1024 * 1024) };
    await expectError(createClient(AuthService, transport).signUp(bomb), { code: Code.ResourceExhausted });
    expect(await userCount(email)).toBe(0);
  });

  it("a gzip bomb over grpc is measured after decompression", async () => {
    const client = new grpc.Client(t.grpcAddress, grpc.credentials.createInsecure(), {
      "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip,
    });
    const email = "gzip-bomb-grpc@example.com";
    const request = create(SignUpRequestSchema, { email, password: PASSWORD, displayName: "x".repeat(8 * 1024 * 1024) });
    const error = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        `/${AuthService.typeName}/${AuthService.method.signUp.name}`,
        () => Buffer.from(toBinary(SignUpRequestSchema, request)),
        (bytes: Buffer) => bytes,
        request,
        (err) => resolve(err),
      ),
    );
    client.close();
    expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(await userCount(email)).toBe(0);
  });

  it("the gRPC port keeps serving after all of the above", async () => {
    const res = await t.clients("grpc").auth.signUp({ email: "still-serving@example.com", password: PASSWORD });
    expect(res.user?.email).toBe("still-serving@example.com");
  });
});

describe("gRPC-web transport sanity", () => {
  it("a public RPC works over gRPC-web", async () => {
    const transport = createGrpcWebTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });
    const res = await createClient(TokenService, transport).getJwks({});
    expect(res.keys).toHaveLength(1);
  });
});
