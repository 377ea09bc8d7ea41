// What grpcurl sees: server reflection (v1 and v1alpha) must describe every RPC completely,
// imports and custom options included (grpc/grpc-node#3018), and grpc.health.v1 must answer.
import { createRequire } from "node:module";
import path from "node:path";
import { create, createFileRegistry, fromBinary, getOption, hasOption, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setupService } from "../support/setup.js";

const require = createRequire(import.meta.url);
const reflectionProto = (version: string) =>
  path.join(path.dirname(require.resolve("@grpc/reflection/package.json")), "build/proto/grpc/reflection", version, "reflection.proto");
const healthProto = path.join(path.dirname(require.resolve("grpc-health-check/package.json")), "proto/health/v1/health.proto");

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };
const API_SERVICES = ["identity.v1.AuthService", "identity.v1.TokenService", "identity.v1.OtpService", "identity.v1.MfaService"];

const t = setupService();

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** A grpc-js client of grpc.reflection.<version>.ServerReflection, one request per stream. */
function reflectionClient(version: "v1" | "v1alpha") {
  const definition = protoLoader.loadSync(reflectionProto(version), LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
  };
  const client = new pkg.grpc.reflection[version]!.ServerReflection(t.grpcAddress, grpc.credentials.createInsecure());
  return {
    close: () => client.close(),
    ask(request: Record<string, unknown>): Promise<ReflectionResponse> {
      return new Promise((resolve, reject) => {
        const stream = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse> }).ServerReflectionInfo();
        let answer: ReflectionResponse | undefined;
        stream.on("data", (response: ReflectionResponse) => (answer = response));
        stream.on("error", reject);
        stream.on("end", () => (answer ? resolve(answer) : reject(new Error("no reflection response"))));
        stream.write({ host: "", ...request });
        stream.end();
      });
    },
  };
}

describe.each(["v1", "v1alpha"] as const)("server reflection %s", (version) => {
  let client: ReturnType<typeof reflectionClient>;
  /** Every file fetched through reflection alone, by name. */
  const files = new Map<string, FileDescriptorProto>();
  let registry: FileRegistry;

  beforeAll(async () => {
    client = reflectionClient(version);
    const addAll = (response: ReflectionResponse) => {
      expect(response.error_response).toBeUndefined();
      for (const bytes of response.file_descriptor_response!.file_descriptor_proto) {
        const file = fromBinary(FileDescriptorProtoSchema, bytes);
        files.set(file.name, file);
      }
    };
    for (const name of API_SERVICES) addAll(await client.ask({ file_containing_symbol: name }));
    // Follow every import by file name until nothing is missing.
    for (let missing = missingImports(files); missing.length > 0; missing = missingImports(files)) {
      for (const name of missing) addAll(await client.ask({ file_by_filename: name }));
    }
    registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
  });
  afterAll(() => client?.close());

  it("lists the four API services", async () => {
    const response = await client.ask({ list_services: "*" });
    const names = response.list_services_response!.service.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(API_SERVICES));
  });

  it("serves each service's file with its imports", () => {
    expect([...files.keys()].sort()).toEqual(
      expect.arrayContaining([
        "google/protobuf/descriptor.proto",
        "google/protobuf/timestamp.proto",
        "identity/v1/access.proto",
        "identity/v1/auth_service.proto",
        "identity/v1/common.proto",
        "identity/v1/mfa_service.proto",
        "identity/v1/otp_service.proto",
        "identity/v1/token_service.proto",
      ]),
    );
    // the files are the originals, not proto-loader's per-package merge
    expect(files.get("identity/v1/token_service.proto")!.dependency).toEqual(["google/protobuf/duration.proto", "google/protobuf/timestamp.proto", "identity/v1/access.proto", "identity/v1/common.proto"]);
  });

  it("resolves every RPC's request and response, and every message field's type", () => {
    let methods = 0;
    for (const name of API_SERVICES) {
      const desc = registry.getService(name);
      expect(desc, name).toBeDefined();
      expect(desc!.methods.length).toBeGreaterThan(0);
      for (const method of desc!.methods) {
        expect(method.input.typeName).toBe(`identity.v1.${method.name}Request`);
        expect(method.output.typeName).toBe(`identity.v1.${method.name}Response`);
        for (const message of reachable(method.input).concat(reachable(method.output))) {
          for (const field of message.fields) {
            if (field.fieldKind === "message") expect(registry.getMessage(field.message.typeName), field.message.typeName).toBeDefined();
          }
        }
        methods++;
      }
    }
    expect(methods).toBe(API_SERVICES.reduce((n, s) => n + registry.getService(s)!.methods.length, 0));
    expect(registry.getService("identity.v1.TokenService")!.methods.map((m) => m.name)).toEqual(["VerifyToken", "IssueServiceToken", "WatchRevocations", "RefreshToken", "RevokeToken", "GetJwks"]);
  });

  it("resolves imported types: VerifyTokenResponse.issue_time is a google.protobuf.Timestamp", () => {
    const response = registry.getMessage("identity.v1.VerifyTokenResponse")!;
    const issueTime = response.fields.find((f) => f.name === "issue_time")!;
    expect(issueTime.fieldKind).toBe("message");
    expect(issueTime.message!.typeName).toBe("google.protobuf.Timestamp");
    expect(issueTime.message!.fields.map((f) => f.name)).toEqual(["seconds", "nanos"]);
    const tokens = registry.getMessage("identity.v1.SignUpResponse")!.fields.find((f) => f.name === "tokens")!;
    expect(tokens.message!.file.name).toBe("identity/v1/common");
  });

  it("keeps the proto comments that grpcurl describe shows", () => {
    const file = files.get("identity/v1/token_service.proto")!;
    expect(file.service[0]!.method[0]!.name).toBe("VerifyToken");
    // source_code_info path of service 0, method 0: service = field 6, method = field 2
    const location = file.sourceCodeInfo?.location.find((l) => l.path.join(".") === "6.0.2.0");
    expect(location?.leadingComments).toMatch(/active/);
  });

  it("resolves the (identity.v1.access) option: VerifyToken is internal and needs tokens.verify", () => {
    // The extension as reflection describes it, not the generated one: what grpcurl resolves.
    const access = registry.getExtension("identity.v1.access");
    expect(access?.extendee.typeName).toBe("google.protobuf.MethodOptions");
    const audience = registry.getEnum("identity.v1.Audience")!;
    const declared = (service: string, method: string) => {
      const desc = registry.getService(service)!.methods.find((m) => m.name === method)!;
      expect(hasOption(desc, access!), `${service}/${method}`).toBe(true);
      const { audience: value, permission } = getOption(desc, access!) as { audience: number; permission: string };
      return { audience: audience.value[value]?.name, permission };
    };
    expect(declared("identity.v1.TokenService", "VerifyToken")).toEqual({ audience: "AUDIENCE_INTERNAL", permission: "tokens.verify" });
    expect(declared("identity.v1.TokenService", "RefreshToken")).toEqual({ audience: "AUDIENCE_PUBLIC", permission: "" });
    expect(declared("identity.v1.AuthService", "WhoAmI")).toEqual({ audience: "AUDIENCE_USER", permission: "" });
  });

  it("answers NOT_FOUND for an unknown symbol", async () => {
    const response = await client.ask({ file_containing_symbol: "identity.v1.NoSuchService" });
    expect(response.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
  });
});

function missingImports(files: Map<string, FileDescriptorProto>): string[] {
  return [...new Set([...files.values()].flatMap((f) => f.dependency))].filter((d) => !files.has(d));
}

/**
 * The files with every import before its importer, as protoc orders a descriptor set.
 * Reflection answers in no particular order, and createFileRegistry needs this one (its
 * resolver overload gets diamond imports wrong in @bufbuild/protobuf 2.x).
 */
function importsFirst(files: Map<string, FileDescriptorProto>): FileDescriptorProto[] {
  const ordered: FileDescriptorProto[] = [];
  const visit = (name: string) => {
    const file = files.get(name)!;
    if (ordered.includes(file)) return;
    file.dependency.forEach(visit);
    ordered.push(file);
  };
  [...files.keys()].forEach(visit);
  return ordered;
}

/** A message and every message type reachable from its fields. */
function reachable(root: DescMessage): DescMessage[] {
  const seen = new Map<string, DescMessage>();
  const visit = (message: DescMessage) => {
    if (seen.has(message.typeName)) return;
    seen.set(message.typeName, message);
    for (const field of message.fields) {
      if (field.fieldKind === "message") visit(field.message);
      if (field.fieldKind === "map" && field.mapKind === "message") visit(field.message);
    }
  };
  visit(root);
  return [...seen.values()];
}

describe("grpc.health.v1.Health", () => {
  let health: grpc.Client & {
    Check(request: { service: string }, callback: (err: grpc.ServiceError | null, response?: { status: string }) => void): void;
  };
  const check = (name: string) =>
    new Promise<{ status: string }>((resolve, reject) => health.Check({ service: name }, (err, res) => (err ? reject(err) : resolve(res!))));

  beforeAll(() => {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProto, LOADER_OPTIONS)) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    health = new pkg.grpc.health.v1.Health(t.grpcAddress, grpc.credentials.createInsecure()) as unknown as typeof health;
  });
  afterAll(() => health?.close());

  it("answers SERVING for the server as a whole", async () => {
    expect(await check("")).toEqual({ status: "SERVING" });
  });

  it.each(API_SERVICES)("answers SERVING for %s", async (name) => {
    expect(await check(name)).toEqual({ status: "SERVING" });
  });

  it("answers NOT_FOUND for an unknown service", async () => {
    await expect(check("identity.v1.NoSuchService")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});
