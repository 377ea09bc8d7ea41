// The permissions service accounts may hold are one closed set (src/domain/callers/permissions.ts):
// every permission an AUDIENCE_INTERNAL RPC declares in the proto must belong to it, or no
// account could ever be granted that RPC.
import { describe, expect, it } from "vitest";
import { Audience } from "../../gen/identity/v1/access_pb.js";
import { PERMISSIONS, isPermission } from "../../src/domain/callers/permissions.js";
import { methodAccess } from "../../src/services/access.js";
import { FORWARD_PERMISSION } from "../../src/services/client-address.js";
import { apiServices } from "../../src/services/routes.js";

describe("permissions", () => {
  it("every AUDIENCE_INTERNAL RPC names a declared permission", () => {
    const internal = apiServices.flatMap(({ methods }) =>
      methods.map((method) => ({ rpc: `${method.parent.typeName}/${method.name}`, ...methodAccess(method) })).filter((a) => a.audience === Audience.INTERNAL),
    );
    expect(internal.length).toBeGreaterThan(0);
    for (const { rpc, permission } of internal) expect(isPermission(permission), `${rpc} names ${permission}`).toBe(true);
  });

  it("holds the permissions issue 12 names, client-address.forward among them", () => {
    expect([...PERMISSIONS].sort()).toEqual(["authz.check", "client-address.forward", "tokens.issue", "tokens.verify", "users.manage", "users.read"]);
    expect(isPermission(FORWARD_PERMISSION)).toBe(true);
    expect(isPermission("root")).toBe(false);
  });
});
