// TLS on both ports and client certificates on the gRPC port (TLS_CERT_FILE, TLS_KEY_FILE,
// TLS_CLIENT_CA_FILE, TLS_CLIENT_AUTH), with a CA and certificates made at run time by openssl
// and real clients: grpc-js, Connect and gRPC-web over HTTPS, and raw TLS handshakes to read
// which certificate a new connection is given after the files change.
import { connect as tlsConnect } from "node:tls";
import { create } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { afterAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService, VerifyTokenResponseSchema } from "../../gen/identity/v1/token_service_pb.js";
import { descriptorSetPath } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createGrpcServer } from "../../src/server/grpc-server.js";
import { createTlsFiles } from "../../src/server/tls.js";
import { methodAccess } from "../../src/services/access.js";
import { clientCertificate, type ClientCertificate } from "../../src/services/call.js";
import { signUp } from "../support/accounts.js";
import { createTestPki, type IssuedCertificate, type TestCa } from "../support/certificates.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { prepared, setupService, withService } from "../support/setup.js";
import { clientsFor, createGrpcJsTransport, type Clients, type ClientTls, type ServiceAddress, type TransportName } from "../support/transports.js";

const files = prepared(
  () => {
    const pki = createTestPki();
    const ca = pki.ca("identity-test-ca");
    const otherCa = pki.ca("other-ca");
    return {
      pki,
      ca,
      otherCa,
      server: pki.server(ca, "identity-1"),
      billing: pki.client(ca, "billing", "spiffe://example.org/billing"),
      stranger: pki.client(otherCa, "stranger", "spiffe://elsewhere.example/stranger"),
    };
  },
  ({ pki }) => pki.remove(),
);

function tlsEnv(server: IssuedCertificate, ca: TestCa | undefined, clientAuth?: "optional" | "require"): Record<string, string> {
  return {
    TLS_CERT_FILE: server.certFile,
    TLS_KEY_FILE: server.keyFile,
    ...(ca && { TLS_CLIENT_CA_FILE: ca.certFile }),
    ...(clientAuth && { TLS_CLIENT_AUTH: clientAuth }),
  };
}

/** Trusts the test CA; presents `as` when given. */
const trusting = (ca: TestCa, as?: IssuedCertificate): ClientTls => ({ ca: ca.cert, cert: as?.cert, key: as?.key });

const opened: Clients[] = [];
afterAll(() => opened.splice(0).forEach((c) => c.close()));
function clients(service: ServiceAddress, name: TransportName, tls?: ClientTls): Clients {
  const set = clientsFor(service, name, tls);
  opened.push(set);
  return set;
}

/** The certificate a new TLS connection to `port` is given (its CN), or the handshake error. */
function presentedCn(port: number, ca: Buffer, alpn: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", servername: "localhost", port, ca, ALPNProtocols: [alpn] }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(Array.isArray(cn) ? cn.join(",") : (cn ?? ""));
    });
    socket.once("error", reject);
  });
}

/** Polls `check` every 100 ms until it passes or `withinMs` is over (then its last failure). */
async function eventually(check: () => Promise<void>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const portOf = (url: string) => Number(new URL(url).port);
const grpcPortOf = (address: string) => Number(address.split(":").pop());

describe("TLS with optional client certificates", () => {
  const t = setupService(() => ({ env: tlsEnv(files().server, files().ca) }));

  it("grpc-js over TLS signs up (a public RPC), and VerifyToken with the service key finds the token active", async () => {
    const { client } = clients(t.service, "grpc", trusting(files().ca));
    const account = await signUp(client(AuthService), "tls-grpc");
    const verified = await client(TokenService).verifyToken({ token: account.tokens.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    expect(verified).toMatchObject({ active: true, userId: account.userId });
  });

  it.each(["connect", "grpc-web"] as const)("%s over HTTPS signs up and logs in", async (name) => {
    expect(t.httpUrl).toMatch(/^https:/);
    const auth = clients(t.service, name, trusting(files().ca)).client(AuthService);
    const account = await signUp(auth, `tls-${name}`);
    const login = await auth.login({ identifier: account.email, password: account.password });
    expect(login.result.case).toBe("tokens");
  });

  it("plaintext is refused on both ports, and nothing is stored", async () => {
    const plain = createClient(AuthService, createGrpcJsTransport(t.grpcAddress));
    await t.expectUnchanged(() => expectError(plain.signUp({ email: "plain@example.com", password: "a long enough passphrase" }), { code: Code.Unavailable }));
    await expect(fetch(t.httpUrl.replace(/^https:/, "http:") + "/healthz")).rejects.toThrow();
  });

  it("a client that does not trust the server's CA is refused before any call", async () => {
    const auth = clients(t.service, "grpc", trusting(files().otherCa)).client(AuthService);
    await expectError(auth.signUp({ email: "untrusting@example.com", password: "a long enough passphrase" }), { code: Code.Unavailable });
  });

  it("a client with a certificate from the CA, and one with a certificate from another CA, are both served", async () => {
    for (const as of [files().billing, files().stranger]) {
      const auth = clients(t.service, "grpc", trusting(files().ca, as)).client(AuthService);
      await signUp(auth, "tls-optional");
    }
  });
});

describe("TLS_CLIENT_AUTH=require", () => {
  const t = setupService(() => ({ env: tlsEnv(files().server, files().ca, "require") }));

  it("the gRPC port refuses a client without a certificate, or with one the CA did not sign, and stores nothing", async () => {
    for (const as of [undefined, files().stranger]) {
      const auth = clients(t.service, "grpc", trusting(files().ca, as)).client(AuthService);
      await t.expectUnchanged(() => expectError(auth.signUp({ email: "no-cert@example.com", password: "a long enough passphrase" }), { code: Code.Unavailable }));
    }
  });

  it("the gRPC port serves a client with a certificate from the CA", async () => {
    const { client } = clients(t.service, "grpc", trusting(files().ca, files().billing));
    const account = await signUp(client(AuthService), "tls-require");
    const verified = await client(TokenService).verifyToken({ token: account.tokens.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    expect(verified.active).toBe(true);
  });

  it("the gateway asks browsers for no certificate", async () => {
    const auth = clients(t.service, "connect", trusting(files().ca)).client(AuthService);
    await signUp(auth, "tls-require-gateway");
  });
});

describe("the client certificate on CallInfo", () => {
  // A gRPC server with one probe method that records what CallInfo says, on the same
  // credentials the service binds with.
  const probe = prepared(
    async () => {
      const tls = createTlsFiles(loadConfig(tlsEnv(files().server, files().ca)).tls!);
      await tls.loaded();
      const seen: (ClientCertificate | undefined)[] = [];
      const server = createGrpcServer({
        routes: [{
          service: TokenService,
          methods: [{
            method: TokenService.method.verifyToken,
            access: methodAccess(TokenService.method.verifyToken),
            handler: async (_request, ctx) => {
              seen.push(clientCertificate(ctx));
              return create(VerifyTokenResponseSchema, {});
            },
          }],
        }],
        health: new HealthImplementation({}),
        descriptorSetPath,
        maxMessageBytes: 64 * 1024,
      });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", tls.grpcCredentials, (err, p) => (err ? reject(err) : resolve(p))),
      );
      return { server, tls, seen, address: `127.0.0.1:${port}` };
    },
    ({ server, tls }) => {
      server.forceShutdown();
      tls.stop();
    },
  );

  const callAs = async (as: IssuedCertificate | undefined): Promise<ClientCertificate | undefined> => {
    const { address, seen } = probe();
    const { client } = clients({ grpcAddress: address, httpUrl: "" }, "grpc", trusting(files().ca, as));
    await client(TokenService).verifyToken({ token: "x" });
    return seen.at(-1);
  };

  it("names the subject and the SPIFFE ID of a certificate the CA signed", async () => {
    const seen = await callAs(files().billing);
    expect(seen).toMatchObject({ subject: "O=Identity tests\nCN=billing", uris: ["spiffe://example.org/billing"], dnsNames: [] });
    expect(seen!.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it("is undefined without a certificate, and for one the CA did not sign (optional accepts it unverified)", async () => {
    expect(await callAs(undefined)).toBeUndefined();
    expect(await callAs(files().stranger)).toBeUndefined();
    expect(probe().seen).toHaveLength(3);
  });
});

describe("checking the files at start", () => {
  it.each([
    ["a key that is not the certificate's", () => ({ ...files().server, keyFile: files().billing.keyFile }), /key values mismatch/],
    ["a certificate file that is not PEM", () => ({ ...files().server, certFile: files().server.keyFile }), /TLS_CERT_FILE/],
  ])("refuses %s before listening", async (_case, identity, message) => {
    const tls = createTlsFiles(loadConfig(tlsEnv(identity(), undefined)).tls!);
    try {
      await expect(tls.loaded()).rejects.toThrow(message);
    } finally {
      tls.stop();
    }
  });
});

describe("reloading the files", () => {
  it("a renewed certificate reaches new connections on both ports, and a new client CA the gRPC port, without a restart; a half-renewed pair is skipped", async () => {
    const { pki, ca, otherCa, stranger } = files();
    const first = pki.server(ca, "identity-reload-1");
    const caFile = { ...ca, certFile: `${pki.dir}/reload-ca.crt` };
    pki.replace(caFile.certFile, ca.cert);
    await withService({ env: { ...tlsEnv(first, caFile, "require"), TLS_RELOAD_SECONDS: "1" } }, async (t) => {
      const grpcPort = grpcPortOf(t.grpcAddress);
      const httpPort = portOf(t.httpUrl);
      expect(await presentedCn(grpcPort, ca.cert, "h2")).toBe("identity-reload-1");
      expect(await presentedCn(httpPort, ca.cert, "http/1.1")).toBe("identity-reload-1");
      // A channel and a connection of its own for every attempt: grpc-js would otherwise reuse
      // the failed subchannel (and wait out its backoff).
      const strangerCalls = async () => {
        const transport = createGrpcJsTransport(t.grpcAddress, grpc.credentials.createSsl(ca.cert, stranger.key, stranger.cert), { "grpc.use_local_subchannel_pool": 1 });
        try {
          await createClient(AuthService, transport).signUp({ email: `s${Date.now()}@example.com`, password: "a long enough passphrase" });
        } finally {
          transport.close();
        }
      };
      await expectError(strangerCalls(), { code: Code.Unavailable });

      // The certificate rewritten before its key: a pair that does not match is skipped (and
      // logged), both ports keep serving the one in use.
      const second = pki.server(ca, "identity-reload-2");
      pki.replace(first.certFile, second.cert);
      await eventually(async () => expect(t.logLines.some((l) => l.includes("tls files not reloaded") && l.includes("key values mismatch"))).toBe(true), 5_000);
      expect(await presentedCn(grpcPort, ca.cert, "h2")).toBe("identity-reload-1");
      expect(await presentedCn(httpPort, ca.cert, "http/1.1")).toBe("identity-reload-1");

      pki.replace(first.keyFile, second.key);
      pki.replace(caFile.certFile, Buffer.concat([ca.cert, otherCa.cert]));
      const started = Date.now();
      await eventually(async () => {
        expect(await presentedCn(grpcPort, ca.cert, "h2")).toBe("identity-reload-2");
        expect(await presentedCn(httpPort, ca.cert, "http/1.1")).toBe("identity-reload-2");
      }, 5_000);
      await eventually(strangerCalls, 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(t.logLines.some((l) => l.includes("tls certificate reloaded") && l.includes("identity-reload-2"))).toBe(true);
    });
  });
});
