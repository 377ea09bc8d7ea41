// Every RPC declares who may call it (proto/identity/v1/access.proto), or, for a vendored proto
// we cannot annotate (proto/vendor), has its entry in the one table VENDORED_ACCESS. This walks
// every method of every service in the descriptor set `npm run generate` builds (what reflection
// serves, so a new RPC cannot be missed), and checks that a method declaring nothing, or
// something inconsistent, stops the service at start-up instead of being served.
import { readFileSync } from "node:fs";
import path from "node:path";
import { create, createFileRegistry, fromBinary, getOption, hasOption, setExtension, type DescMethod } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { access, AccessSchema, Audience } from "../../gen/identity/v1/access_pb.js";
import { LIBRARY_SERVICES, methodAccess, servedByGateway, VENDORED_ACCESS } from "../../src/services/access.js";
import { apiServices, internalMethods, vendoredServices } from "../../src/services/routes.js";

const root = path.resolve(import.meta.dirname, "../..");
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(path.join(root, "gen/descriptor.binpb"))));
/** Every RPC of identity.v1 in the descriptor set. */
const described: DescMethod[] = [...registry.files].filter((f) => f.proto.package === "identity.v1").flatMap((f) => f.services.flatMap((s) => s.methods));
/** Every RPC of every package in the descriptor set, vendored ones included (not health and reflection, which their libraries serve). */
const everyMethod: DescMethod[] = [...registry.files].flatMap((f) => f.services.filter((s) => !LIBRARY_SERVICES.has(s.typeName)).flatMap((s) => s.methods));
const label = (m: DescMethod) => `${m.parent.typeName}/${m.name}`;

describe("every RPC in the descriptor set", () => {
  it("is mounted: the API's services and the vendored ones, nothing more, nothing less", () => {
    expect([...apiServices, ...vendoredServices].map((s) => s.typeName).sort()).toEqual([...new Set(everyMethod.map((m) => m.parent.typeName))].sort());
  });

  it.each(everyMethod.map((m) => [label(m), m] as const))("%s has its access from exactly one source: its option, or VENDORED_ACCESS", (name, method) => {
    expect(hasOption(method, access) !== VENDORED_ACCESS.has(name), "neither or both").toBe(true);
    expect(() => methodAccess(method)).not.toThrow();
  });

  it("leaves out only health checking and reflection, which the set holds for reflection to describe and their libraries serve", () => {
    const services = [...registry.files].flatMap((f) => f.services.map((s) => s.typeName));
    expect(services.filter((s) => LIBRARY_SERVICES.has(s)).sort()).toEqual([...LIBRARY_SERVICES].sort());
    for (const name of LIBRARY_SERVICES) expect([...apiServices, ...vendoredServices].map((s) => s.typeName)).not.toContain(name);
  });

  it("VENDORED_ACCESS is exactly Envoy's Check, internal, needing authz.check", () => {
    expect([...VENDORED_ACCESS]).toEqual([["envoy.service.auth.v3.Authorization/Check", { audience: Audience.INTERNAL, permission: "authz.check" }]]);
    // Each entry names a vendored RPC the descriptor set holds (a stale entry fails here).
    for (const name of VENDORED_ACCESS.keys()) expect(everyMethod.map(label)).toContain(name);
  });
});

describe("the (identity.v1.access) option in the descriptor set", () => {
  it("finds the API's RPCs", () => {
    expect(described.length).toBeGreaterThanOrEqual(23);
    // The servers mount exactly the services the descriptor set describes.
    expect(apiServices.map((s) => s.typeName).sort()).toEqual([...new Set(described.map((m) => m.parent.typeName))].sort());
  });

  it.each(described.map((m) => [label(m), m] as const))("%s declares an audience, and a permission exactly when internal or admin", (_, method) => {
    expect(hasOption(method, access), "option (identity.v1.access) missing").toBe(true);
    const { audience, permission } = getOption(method, access);
    expect(audience, "AUDIENCE_UNSPECIFIED").not.toBe(Audience.UNSPECIFIED);
    expect([Audience.PUBLIC, Audience.USER, Audience.INTERNAL, Audience.ADMIN]).toContain(audience);
    if (audience === Audience.INTERNAL || audience === Audience.ADMIN) expect(permission).toMatch(/^[a-z]+(?:[.-][a-z]+)+$/);
    else expect(permission).toBe("");
    // What the servers read agrees with the descriptor set (the generated code is not stale).
    expect(methodAccess(method)).toEqual({ audience, permission });
  });

  it("declares VerifyToken, IssueServiceToken and WatchRevocations internal, and nothing else", () => {
    const internal = described.filter((m) => getOption(m, access).audience === Audience.INTERNAL).map(label);
    expect(internal).toEqual(["identity.v1.TokenService/VerifyToken", "identity.v1.TokenService/IssueServiceToken", "identity.v1.TokenService/WatchRevocations"]);
    expect(getOption(described.find((m) => m.name === "VerifyToken")!, access).permission).toBe("tokens.verify");
    expect(getOption(described.find((m) => m.name === "IssueServiceToken")!, access).permission).toBe("tokens.issue");
    expect(getOption(described.find((m) => m.name === "WatchRevocations")!, access).permission).toBe("tokens.verify");
    // The servers' internal methods: these, and the vendored ones the table declares internal.
    expect([...internalMethods].map(label)).toEqual([...internal, "envoy.service.auth.v3.Authorization/Check"]);
  });

  it("declares every AdminService RPC admin, reading with users.read and changing with users.manage", () => {
    const admin = described.filter((m) => m.parent.typeName === "identity.v1.AdminService");
    expect(admin.map((m) => m.name)).toHaveLength(10);
    for (const method of admin) {
      const { audience, permission } = getOption(method, access);
      expect(audience, label(method)).toBe(Audience.ADMIN);
      expect(permission, label(method)).toBe(["ListUsers", "GetUser", "ListUserActivity"].includes(method.name) ? "users.read" : "users.manage");
    }
    expect(described.filter((m) => getOption(m, access).audience === Audience.ADMIN)).toEqual(admin);
  });

  it("keeps internal RPCs off the gateway and serves public, user and admin RPCs there", () => {
    expect(servedByGateway({ audience: Audience.INTERNAL, permission: "tokens.verify" })).toBe(false);
    expect(servedByGateway({ audience: Audience.ADMIN, permission: "users.read" })).toBe(true);
    expect(servedByGateway({ audience: Audience.PUBLIC, permission: "" })).toBe(true);
    expect(servedByGateway({ audience: Audience.USER, permission: "" })).toBe(true);
  });
});

/**
 * One RPC in a file of its own, declaring `declared` (or no option at all); by default
 * example.v1.ExampleService/Ping, or as `rpc` names it (`<package>.<Service>/<Method>`).
 */
function methodDeclaring(declared: { audience: Audience; permission?: string } | undefined, rpc = "example.v1.ExampleService/Ping"): DescMethod {
  const [, pkg, service, method] = /^(.+)\.([^./]+)\/([^/]+)$/.exec(rpc)!;
  const options = create(MethodOptionsSchema);
  if (declared) setExtension(options, access, create(AccessSchema, declared));
  const file = create(FileDescriptorProtoSchema, {
    name: `${pkg!.replaceAll(".", "/")}/example.proto`,
    package: pkg,
    syntax: "proto3",
    messageType: [{ name: "PingRequest" }, { name: "PingResponse" }],
    service: [{ name: service, method: [{ name: method, inputType: `.${pkg}.PingRequest`, outputType: `.${pkg}.PingResponse`, options }] }],
  });
  return createFileRegistry(file, () => undefined).getService(`${pkg}.${service}`)!.methods[0]!;
}

describe("methodAccess refuses, at start-up, a method", () => {
  it("that declares nothing", () => {
    expect(() => methodAccess(methodDeclaring(undefined))).toThrow("example.v1.ExampleService/Ping declares no (identity.v1.access) option");
  });

  it("that declares AUDIENCE_UNSPECIFIED", () => {
    expect(() => methodAccess(methodDeclaring({ audience: Audience.UNSPECIFIED }))).toThrow(/AUDIENCE_UNSPECIFIED/);
    // An audience this build does not know (a newer proto): not served either.
    expect(() => methodAccess(methodDeclaring({ audience: 7 as Audience }))).toThrow(/declares audience 7/);
  });

  it("that is internal without a permission", () => {
    expect(() => methodAccess(methodDeclaring({ audience: Audience.INTERNAL }))).toThrow(/names no permission/);
  });

  it("that is public or user and names a permission nobody would check", () => {
    expect(() => methodAccess(methodDeclaring({ audience: Audience.PUBLIC, permission: "tokens.verify" }))).toThrow(/only AUDIENCE_INTERNAL/);
    expect(() => methodAccess(methodDeclaring({ audience: Audience.USER, permission: "users.read" }))).toThrow(/only AUDIENCE_INTERNAL/);
  });

  it("that is vendored (no option possible) but has no VENDORED_ACCESS entry", () => {
    expect(() => methodAccess(methodDeclaring(undefined, "envoy.service.auth.v3.Authorization/CheckAgain"))).toThrow(
      "envoy.service.auth.v3.Authorization/CheckAgain declares no (identity.v1.access) option",
    );
    expect(() => methodAccess(methodDeclaring(undefined, "envoy.service.ext_proc.v3.ExternalProcessor/Process"))).toThrow(/declares no/);
  });

  it("that declares the option and also has a VENDORED_ACCESS entry (two sources)", () => {
    expect(() => methodAccess(methodDeclaring({ audience: Audience.INTERNAL, permission: "authz.check" }, "envoy.service.auth.v3.Authorization/Check"))).toThrow(/and has an entry in VENDORED_ACCESS/);
  });

  it("but gives a vendored RPC its VENDORED_ACCESS entry", () => {
    expect(methodAccess(methodDeclaring(undefined, "envoy.service.auth.v3.Authorization/Check"))).toEqual({ audience: Audience.INTERNAL, permission: "authz.check" });
  });

  it("but accepts a consistent declaration", () => {
    expect(methodAccess(methodDeclaring({ audience: Audience.INTERNAL, permission: "users.read" }))).toEqual({ audience: Audience.INTERNAL, permission: "users.read" });
    expect(methodAccess(methodDeclaring({ audience: Audience.PUBLIC }))).toEqual({ audience: Audience.PUBLIC, permission: "" });
  });
});
