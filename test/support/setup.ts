// The one set-up of every suite that runs the service in-process (better-auth's getTestInstance
// is the model): called at a file's (or describe block's) top level, it registers its own
// beforeAll/afterAll and hands back a context whose properties work inside tests:
//
//   const t = setupService({ env: { ... }, clock });
//   describe.each(transportNames)("... over %s", (name) => {
//     const { auth, tokens } = t.clients(name);
//     it("...", async () => {
//       const account = await signUp(auth, "tag");
//       await t.expectUnchanged(() => ...);
//       const code = t.outbox.lastCode(account.email);
//     });
//   });
//
// Clients may be taken at collection time: their transport connects on first call, after the
// service has started, and the context closes it after the file (or block).
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import type { TokenPair } from "../../gen/identity/v1/common_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService, type VerifyTokenResponse } from "../../gen/identity/v1/token_service_pb.js";
import { login, signUp, type TestAccount } from "./accounts.js";
import { createTestOutbox, type TestOutbox } from "./outbox.js";
import { startTestService, TEST_SERVICE_KEY, type TestService, type TestServiceOptions } from "./service.js";
import { expectNothingStored, expectUnchanged, tableDigests } from "./stored-data.js";
import { clientsFor, type Clients, type ServiceAddress, type TransportName } from "./transports.js";

/** The generated clients of every service over one transport. */
export interface ServiceClients {
  readonly name: TransportName;
  /** Connects on first call. */
  readonly transport: Transport;
  readonly auth: Client<typeof AuthService>;
  readonly tokens: Client<typeof TokenService>;
  readonly otp: Client<typeof OtpService>;
  readonly mfa: Client<typeof MfaService>;
  client<S extends DescService>(service: S): Client<S>;
}

/**
 * The running service's properties (throwing outside tests and hooks, before it has started),
 * its outbox (there from the start), and helpers.
 */
export interface TestContext extends Omit<TestService, "close"> {
  /** The running service itself, for helpers that take a TestService. */
  readonly service: TestService;
  /** Clients over one transport (grpc-js unless named); the same object each time. */
  clients(name?: TransportName): ServiceClients;
  /** VerifyToken as a backend service calls it: grpc-js, with the service key. */
  verify(accessToken: string): Promise<VerifyTokenResponse>;
  /** Signs up a fresh account by email (see accounts.ts signUp), over grpc-js unless named. */
  signUp(tag: string, extra?: Parameters<typeof signUp>[2], via?: TransportName): Promise<TestAccount>;
  login(identifier: string, password?: string, via?: TransportName): Promise<TokenPair>;
  /** Row count and digest of every table (but `except`). */
  fingerprint(except?: readonly string[]): Promise<Record<string, string>>;
  /** Runs `action` and asserts no stored row changed (but in `except`). */
  expectUnchanged<T>(action: () => Promise<T>, except?: readonly string[]): Promise<T>;
  /** As expectUnchanged, and no one-time-code message was sent. */
  expectNothingStored<T>(action: () => Promise<T>, options?: { except?: readonly string[] }): Promise<T>;
  /**
   * A value the file's tests share, built once after the service has started (a beforeAll
   * registered here); read it with the returned function inside tests.
   */
  prepare<T>(build: () => Promise<T> | T): () => T;
}

export type SetupOptions = Omit<TestServiceOptions, "outbox">;

/**
 * A service on port 0 for the enclosing file or describe block, and its context. `options` may
 * be a function, called when the service starts, for settings known only then (the URL of a
 * delivery server that `prepared` started).
 */
export function setupService(options: SetupOptions | (() => SetupOptions | Promise<SetupOptions>) = {}): TestContext {
  const outbox = createTestOutbox();
  let started: TestService | undefined;
  const connected: Clients[] = [];

  beforeAll(async () => {
    started = await startTestService({ ...(typeof options === "function" ? await options() : options), outbox });
  });
  afterAll(async () => {
    for (const clients of connected.splice(0)) clients.close();
    await started?.close();
    started = undefined;
  });

  const running = (): TestService => {
    if (!started) throw new Error("the test service is not running: use the context inside tests and hooks");
    return started;
  };

  return contextOf(running, outbox, connected);
}

/**
 * A service for one test, closed when `use` returns or throws: for a test that needs settings
 * of its own. Its context is a file's context, but for `prepare` (hooks cannot be added inside a
 * test).
 */
export async function withService<T>(options: SetupOptions, use: (t: TestContext) => Promise<T>): Promise<T> {
  const outbox = createTestOutbox();
  const connected: Clients[] = [];
  const service = await startTestService({ ...options, outbox });
  try {
    return await use(contextOf(() => service, outbox, connected));
  } finally {
    for (const clients of connected.splice(0)) clients.close();
    await service.close();
  }
}

function contextOf(running: () => TestService, outbox: TestOutbox, connected: Clients[]): TestContext {
  const clientSets = new Map<TransportName, ServiceClients>();
  function clients(name: TransportName = "grpc"): ServiceClients {
    let set = clientSets.get(name);
    if (!set) {
      set = lazyClients(running, name, connected);
      clientSets.set(name, set);
    }
    return set;
  }

  const sent = () => outbox.count;
  return {
    get service() {
      return running();
    },
    get app() {
      return running().app;
    },
    get db() {
      return running().db;
    },
    get config() {
      return running().config;
    },
    get clock() {
      return running().clock;
    },
    get grpcAddress() {
      return running().grpcAddress;
    },
    get httpUrl() {
      return running().httpUrl;
    },
    get metricsUrl() {
      return running().metricsUrl;
    },
    get logLines() {
      return running().logLines;
    },
    outbox,
    clients,
    verify: (token) => clients("grpc").tokens.verifyToken({ token }, { headers: { "x-service-key": TEST_SERVICE_KEY } }),
    signUp: (tag, extra, via) => signUp(clients(via).auth, tag, extra),
    login: (identifier, password, via) => login(clients(via).auth, identifier, password),
    fingerprint: (except) => tableDigests(running().db, except),
    expectUnchanged: (action, except) => expectUnchanged(running().db, action, except),
    expectNothingStored: (action, options) => expectNothingStored(running().db, sent, action, options),
    prepare: (build) => prepared(build),
  };
}

/**
 * Clients over one transport to `target` (a service, or a service process), usable from
 * collection time: the transport connects on its first call, and closes after the enclosing
 * file or describe block.
 */
export function clientsOn(target: () => ServiceAddress, name: TransportName): ServiceClients {
  const connected: Clients[] = [];
  afterAll(() => {
    for (const clients of connected.splice(0)) clients.close();
  });
  return lazyClients(target, name, connected);
}

/** Clients whose transport connects on first call; what it connected is pushed to `connected`. */
function lazyClients(target: () => ServiceAddress, name: TransportName, connected: Clients[]): ServiceClients {
  let clients: Clients | undefined;
  const real = () => {
    if (!clients) {
      clients = clientsFor(target(), name);
      connected.push(clients);
    }
    return clients.transport;
  };
  const transport: Transport = {
    unary: (method, signal, timeoutMs, header, input, contextValues) => real().unary(method, signal, timeoutMs, header, input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) => real().stream(method, signal, timeoutMs, header, input, contextValues),
  };
  return {
    name,
    transport,
    auth: createClient(AuthService, transport),
    tokens: createClient(TokenService, transport),
    otp: createClient(OtpService, transport),
    mfa: createClient(MfaService, transport),
    client: (service) => createClient(service, transport),
  };
}

/**
 * A value for the enclosing file or describe block, built in a beforeAll registered here (so
 * after any registered before it) and torn down after; read it with the returned function.
 */
export function prepared<T>(build: () => Promise<T> | T, teardown?: (value: T) => Promise<void> | void): () => T {
  let value: { v: T } | undefined;
  beforeAll(async () => {
    value = { v: await build() };
  });
  if (teardown) {
    afterAll(async () => {
      if (value) await teardown(value.v);
      value = undefined;
    });
  }
  return () => {
    if (!value) throw new Error("prepared value read outside tests and hooks (before its beforeAll ran)");
    return value.v;
  };
}
