// Issue 18: every grpcurl command README shows, run by a client that knows nothing but server
// reflection, as grpcurl does: it lists the services, fetches the files that describe a symbol
// (and their imports) by reflection alone, builds its registry from them (@bufbuild/protobuf),
// encodes the -d JSON with it and calls the method. grpc.health.v1.Health included. The only
// schema compiled in is the reflection protocol's own (proto/vendor/grpc/reflection).
import { readFileSync } from "node:fs";
import { create, createFileRegistry, fromBinary, fromJson, toBinary, type DescMethod, type FileRegistry, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ServerReflectionRequestSchema, ServerReflectionResponseSchema, type ServerReflectionRequest, type ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { setupService } from "../support/setup.js";
import { TEST_SERVICE_KEY } from "../support/service.js";

const t = setupService();

/** The grpcurl commands of README.md, continuation lines joined. */
function readmeCommands(): string[] {
  const text = readFileSync("README.md", "utf8").replace(/\\\n\s*/g, "");
  return text.split("\n").map((line) => line.trim()).filter((line) => line.startsWith("grpcurl "));
}

/** Shell words: '...' literal, "..." with \" and $VAR, bare words with $VAR. */
function words(command: string, vars: Record<string, string>): string[] {
  const out: string[] = [];
  const expand = (s: string) => s.replace(/\$\{?([A-Z_]+)\}?/g, (_, name: string) => {
    if (!(name in vars)) throw new Error(`README uses $${name}, unknown to this test`);
    return vars[name]!;
  });
  const re = /'([^']*)'|"((?:\\.|[^"\\])*)"|(\S+)/g;
  let last = -1;
  for (const m of command.matchAll(re)) {
    const part = m[1] !== undefined ? m[1] : m[2] !== undefined ? expand(m[2].replace(/\\(.)/g, "$1")) : expand(m[3]!);
    // Adjacent quoted pieces are one word ('{"a":"'$X'"}').
    if (last === m.index && out.length > 0) out[out.length - 1] += part;
    else out.push(part);
    last = m.index + m[0].length;
  }
  return out;
}

/** A client of grpc.reflection.v1 over grpc-js, one request per stream. */
class ReflectionOnlyClient {
  private readonly client: grpc.Client;
  private readonly files = new Map<string, FileDescriptorProto>();
  constructor(address: string) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }
  close(): void {
    this.client.close();
  }
  private ask(request: ServerReflectionRequest["messageRequest"]): Promise<ServerReflectionResponse> {
    return new Promise((resolve, reject) => {
      const call = this.client.makeBidiStreamRequest(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        (m: ServerReflectionRequest) => Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
        (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
      );
      let answer: ServerReflectionResponse | undefined;
      call.on("data", (r: ServerReflectionResponse) => (answer = r));
      call.on("error", reject);
      call.on("end", () => (answer ? resolve(answer) : reject(new Error("no reflection answer"))));
      call.write(create(ServerReflectionRequestSchema, { messageRequest: request }));
      call.end();
    });
  }
  async list(): Promise<string[]> {
    const r = await this.ask({ case: "listServices", value: "*" });
    if (r.messageResponse.case !== "listServicesResponse") throw new Error(`list: ${JSON.stringify(r.messageResponse)}`);
    return r.messageResponse.value.service.map((s) => s.name);
  }
  private async fetch(request: ServerReflectionRequest["messageRequest"]): Promise<void> {
    const r = await this.ask(request);
    if (r.messageResponse.case !== "fileDescriptorResponse") throw new Error(`${request.case} ${String(request.value)}: ${JSON.stringify(r.messageResponse.value)}`);
    for (const bytes of r.messageResponse.value.fileDescriptorProto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      this.files.set(file.name, file);
    }
  }
  /** The registry of every file that describes `symbol`, with their imports, fetched by reflection. */
  async registryFor(symbol: string): Promise<FileRegistry> {
    await this.fetch({ case: "fileContainingSymbol", value: symbol });
    for (let missing = this.missing(); missing.length > 0; missing = this.missing()) {
      for (const name of missing) await this.fetch({ case: "fileByFilename", value: name });
    }
    // Imports before the files that import them, as a FileDescriptorSet lists them.
    const ordered: FileDescriptorProto[] = [];
    const visit = (file: FileDescriptorProto) => {
      if (ordered.includes(file)) return;
      for (const dep of file.dependency) visit(this.files.get(dep)!);
      ordered.push(file);
    };
    for (const file of this.files.values()) visit(file);
    return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  }
  private missing(): string[] {
    return [...this.files.values()].flatMap((f) => f.dependency).filter((d) => !this.files.has(d));
  }
}

let reflection: ReflectionOnlyClient;
beforeAll(() => {
  reflection = new ReflectionOnlyClient(t.grpcAddress);
});
afterAll(() => reflection.close());

it("lists grpc.health.v1.Health, reflection itself and every service the server mounts, each resolvable", async () => {
  const services = await reflection.list();
  for (const name of ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "identity.v1.AuthService", "identity.v1.TokenService", "identity.v1.OtpService", "identity.v1.MfaService", "identity.v1.AdminService", "envoy.service.auth.v3.Authorization"]) {
    expect(services, name).toContain(name);
  }
  for (const name of services) {
    const registry = await reflection.registryFor(name);
    expect(registry.getService(name), name).toBeDefined();
  }
});

it("runs every grpcurl command of README through the reflection-only client", async () => {
  const { auth } = t.clients();
  const signUp = await auth.signUp({ email: `readme-${Date.now()}@example.com`, password: "correct horse battery" });
  // README's placeholders: an account's access token; the test's bootstrap service key for every key.
  const token = signUp.tokens!.accessToken;
  const vars = { TOKEN: token, ACCESS: token, SERVICE_TOKEN: token, SERVICE_KEY: TEST_SERVICE_KEY, KEY: TEST_SERVICE_KEY, BILLING_KEY: TEST_SERVICE_KEY, BFF_KEY: TEST_SERVICE_KEY, PAYMENTS_KEY: TEST_SERVICE_KEY };
  const commands = readmeCommands();
  expect(commands.length).toBeGreaterThan(15);
  const outcomes: string[] = [];
  for (const command of commands) {
    const argv = words(command, vars).slice(1);
    const headers = new grpc.Metadata();
    let data = "{}";
    const rest: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === "-plaintext") continue;
      // TLS examples run here in plaintext: the method and the request are what is checked.
      if (["-cacert", "-cert", "-key", "-authority", "-servername"].includes(argv[i]!)) {
        i++;
        continue;
      }
      if (argv[i] === "-H") {
        const [name, ...value] = argv[++i]!.split(":");
        headers.add(name!.trim().toLowerCase(), value.join(":").trim());
      } else if (argv[i] === "-d") data = argv[++i]!.replaceAll("<id>", signUp.user!.id);
      else rest.push(argv[i]!);
    }
    expect(rest[0], command).toMatch(/^[\w.-]+:\d+$/);
    const [verb, target] = rest.slice(1);
    if (verb === "list") {
      expect(await reflection.list(), command).toContain("grpc.health.v1.Health");
      outcomes.push(`${command}: listed`);
      continue;
    }
    if (verb === "describe") {
      const registry = await reflection.registryFor(target!);
      const [service, method] = [target!.split(".").slice(0, -1).join("."), target!.split(".").at(-1)!];
      const found = registry.get(target!) ?? registry.getService(service)?.methods.find((m) => m.name === method);
      expect(found, command).toBeDefined();
      outcomes.push(`${command}: described`);
      continue;
    }
    // A call: Service/Method.
    const [serviceName, methodName] = verb!.split("/");
    const registry = await reflection.registryFor(serviceName!);
    const method = registry.getService(serviceName!)?.methods.find((m) => m.name === methodName);
    expect(method, command).toBeDefined();
    const status = await call(method!, fromJsonText(method!, data), headers);
    // The request reached its handler: answered, or refused by the application (a code the README
    // example's placeholder values may well earn), never unknown to the server or undecodable.
    expect([grpc.status.UNIMPLEMENTED, grpc.status.INTERNAL, grpc.status.UNKNOWN], `${command}: ${status.details}`).not.toContain(status.code);
    outcomes.push(`${command}: ${grpc.status[status.code]}`);
  }
  // The README walk-through's happy path: health, sign-up and WhoAmI answer OK.
  expect(outcomes.find((o) => o.includes("grpc.health.v1.Health/Check"))).toMatch(/: OK$/);
  expect(outcomes.find((o) => o.includes("AuthService/WhoAmI"))).toMatch(/: OK$/);
});

function fromJsonText(method: DescMethod, text: string) {
  return fromJson(method.input, JSON.parse(text) as JsonValue);
}

function call(method: DescMethod, request: unknown, headers: grpc.Metadata): Promise<{ code: grpc.status; details: string }> {
  const client = new grpc.Client(t.grpcAddress, grpc.credentials.createInsecure());
  const path = `/${method.parent.typeName}/${method.name}`;
  const serialize = (m: never) => Buffer.from(toBinary(method.input, m));
  const deserialize = (b: Buffer) => fromBinary(method.output, b);
  return new Promise((resolve) => {
    const done = (result: { code: grpc.status; details: string }) => {
      client.close();
      resolve(result);
    };
    if (method.methodKind === "server_streaming") {
      const stream = client.makeServerStreamRequest(path, serialize, deserialize, request as never, headers);
      // A stream that opens and stays open is answered: stop after its first message or 1 s.
      const timer = setTimeout(() => stream.cancel(), 1_000);
      stream.on("data", () => stream.cancel());
      stream.on("error", (err: grpc.ServiceError) => {
        clearTimeout(timer);
        done(err.code === grpc.status.CANCELLED ? { code: grpc.status.OK, details: "streamed" } : { code: err.code, details: err.details });
      });
      stream.on("end", () => {
        clearTimeout(timer);
        done({ code: grpc.status.OK, details: "ended" });
      });
      return;
    }
    client.makeUnaryRequest(path, serialize, deserialize, request as never, headers, (err) => {
      done(err ? { code: err.code ?? grpc.status.UNKNOWN, details: err.details ?? err.message } : { code: grpc.status.OK, details: "" });
    });
  });
}
