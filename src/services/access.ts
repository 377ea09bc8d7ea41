// Who may call each RPC, as its proto declares it (`option (identity.v1.access)`, see
// proto/identity/v1/access.proto). Read from the descriptors once, at start-up: the routes, the
// call policy and the gateway all derive from this, so no list of our methods is kept by hand.
// The one exception is VENDORED_ACCESS: RPCs of protos we serve but do not own (proto/vendor,
// copied unchanged), which cannot carry our option.
import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { access, Audience } from "../../gen/identity/v1/access_pb.js";
import { AUTHZ_PERMISSION } from "./forward-auth.js";

/** A method's declared access, checked for consistency. */
export interface MethodAccess {
  readonly audience: Audience.PUBLIC | Audience.USER | Audience.INTERNAL | Audience.ADMIN;
  /** What an internal or admin service caller must hold (`tokens.verify`); empty for public and user RPCs. */
  readonly permission: string;
}

/**
 * The access of vendored RPCs (proto/vendor), by `<service type name>/<method>`: the only table of
 * methods kept by hand. A vendored RPC missing here has no access and stops the service at
 * start-up like any RPC without the option; test/unit/access.test.ts checks this table against
 * the descriptor set.
 */
export const VENDORED_ACCESS: ReadonlyMap<string, MethodAccess> = new Map<string, MethodAccess>([
  // Envoy's ext_authz filter (envoy-authz-service.ts), a proxy asking on behalf of its clients;
  // the same permission as forward authentication over HTTP (GET /authz).
  ["envoy.service.auth.v3.Authorization/Check", { audience: Audience.INTERNAL, permission: AUTHZ_PERMISSION }],
]);

/**
 * Services of the descriptor set (proto/vendor/grpc) that their own libraries serve on the gRPC
 * port, outside the call policy and open to every caller, as grpcurl and probes expect: health
 * checking (grpc-health-check) and server reflection (@grpc/reflection). They are in the set so
 * that reflection lists and describes them.
 */
export const LIBRARY_SERVICES: ReadonlySet<string> = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/**
 * The access `method` declares (or VENDORED_ACCESS gives it). Throws (so the service does not
 * start) when the option is missing or unspecified, when an internal RPC names no permission, or
 * when another names one (it would not be checked, and a reader of the proto would think it is).
 */
export function methodAccess(method: DescMethod): MethodAccess {
  const rpc = `${method.parent.typeName}/${method.name}`;
  const vendored = VENDORED_ACCESS.get(rpc);
  if (!hasOption(method, access)) {
    if (vendored === undefined) throw new Error(`${rpc} declares no (identity.v1.access) option`);
    return vendored;
  }
  // Two sources for one method: a reader of either would be misled.
  if (vendored !== undefined) throw new Error(`${rpc} declares (identity.v1.access) and has an entry in VENDORED_ACCESS`);
  const { audience, permission } = getOption(method, access);
  switch (audience) {
    case Audience.INTERNAL:
    case Audience.ADMIN:
      if (permission === "") throw new Error(`${rpc} is AUDIENCE_${Audience[audience]} but names no permission`);
      return { audience, permission };
    case Audience.PUBLIC:
    case Audience.USER:
      if (permission !== "") throw new Error(`${rpc} names permission "${permission}", which only AUDIENCE_INTERNAL and AUDIENCE_ADMIN RPCs check`);
      return { audience, permission };
    default:
      throw new Error(`${rpc} declares ${Audience[audience] === undefined ? `audience ${audience}` : `AUDIENCE_${Audience[audience]}`}, not AUDIENCE_PUBLIC, AUDIENCE_USER, AUDIENCE_INTERNAL or AUDIENCE_ADMIN`);
  }
}

/**
 * Whether the web gateway serves a method: public, user and admin RPCs (admin ones to people
 * only: the call policy refuses a service credential there, policy.ts). Named audiences, not "all
 * but internal", so an audience added later stays off the browser port until someone decides.
 */
export function servedByGateway({ audience }: MethodAccess): boolean {
  return audience === Audience.PUBLIC || audience === Audience.USER || audience === Audience.ADMIN;
}
