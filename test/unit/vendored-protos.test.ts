// proto/vendor holds exactly the import closure of Envoy's external_auth.proto (google/protobuf/*
// aside, which buf provides), so nothing unused is vendored and nothing it needs is missing, plus
// gRPC's health and reflection protos (for reflection to describe them); and one
// google/rpc/status.proto in the whole build, beside our google.rpc error details.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const vendor = path.join(root, "proto/vendor");
const files = fromBinary(FileDescriptorSetSchema, readFileSync(path.join(root, "gen/descriptor.binpb"))).file;
const byName = new Map(files.map((f) => [f.name, f]));

function closure(start: string): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || name.startsWith("google/protobuf/")) return;
    seen.add(name);
    const file = byName.get(name);
    expect(file, `${name} is in the descriptor set`).toBeDefined();
    file!.dependency.forEach(visit);
  };
  visit(start);
  return [...seen].sort();
}

describe("proto/vendor", () => {
  const GRPC = ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto", "grpc/reflection/v1alpha/reflection.proto"];

  it("is exactly the import closure of envoy/service/auth/v3/external_auth.proto, and gRPC's health and reflection protos", () => {
    const all = readdirSync(vendor, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith(".proto"))
      .map((entry) => path.relative(vendor, path.join(entry.parentPath, entry.name)))
      .sort();
    expect(all.filter((name) => name.startsWith("grpc/"))).toEqual(GRPC);
    for (const name of GRPC) expect(closure(name), name).toEqual([name]);
    const vendored = all.filter((name) => !name.startsWith("grpc/"));
    expect(vendored).toHaveLength(19);
    expect(closure("envoy/service/auth/v3/external_auth.proto")).toEqual(vendored);
  });

  it("carries its licence and provenance", () => {
    expect(readFileSync(path.join(vendor, "LICENSE"), "utf8")).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    const readme = readFileSync(path.join(vendor, "README.md"), "utf8");
    expect(readme).toContain("@grpc/grpc-js-xds@1.14.1");
    expect(readme).toContain("do not edit; replace wholesale");
  });

  it("shares package google.rpc with our error details without a second status.proto or a duplicate message", () => {
    expect(files.filter((f) => f.name.endsWith("google/rpc/status.proto")).map((f) => f.name)).toEqual(["google/rpc/status.proto"]);
    const messages = files.filter((f) => f.package === "google.rpc").flatMap((f) => f.messageType.map((m) => m.name));
    expect(messages.sort()).toEqual(["BadRequest", "ErrorInfo", "RetryInfo", "Status"]);
  });
});
