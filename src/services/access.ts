// Who may call each RPC, as its proto declares it (`option (identity.v1.access)`, see
// proto/identity/v1/access.proto). Read from the descriptors once, at start-up: the routes, the
// call policy and the gateway all derive from this, so no list of methods is kept by hand.
import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { access, Audience } from "../../gen/identity/v1/access_pb.js";

/** A method's declared access, checked for consistency. */
export interface MethodAccess {
  readonly audience: Audience.PUBLIC | Audience.USER | Audience.INTERNAL;
  /** What an internal caller must hold (`tokens.verify`); empty for public and user RPCs. */
  readonly permission: string;
}

/**
 * The access `method` declares. Throws (so the service does not start) when the option is
 * missing or unspecified, when an internal RPC names no permission, or when another names one
 * (it would not be checked, and a reader of the proto would think it is).
 */
export function methodAccess(method: DescMethod): MethodAccess {
  const rpc = `${method.parent.typeName}/${method.name}`;
  if (!hasOption(method, access)) throw new Error(`${rpc} declares no (identity.v1.access) option`);
  const { audience, permission } = getOption(method, access);
  switch (audience) {
    case Audience.INTERNAL:
      if (permission === "") throw new Error(`${rpc} is AUDIENCE_INTERNAL but names no permission`);
      return { audience, permission };
    case Audience.PUBLIC:
    case Audience.USER:
      if (permission !== "") throw new Error(`${rpc} names permission "${permission}", which only AUDIENCE_INTERNAL RPCs check`);
      return { audience, permission };
    default:
      throw new Error(`${rpc} declares ${Audience[audience] === undefined ? `audience ${audience}` : `AUDIENCE_${Audience[audience]}`}, not AUDIENCE_PUBLIC, AUDIENCE_USER or AUDIENCE_INTERNAL`);
  }
}

/**
 * Whether the web gateway serves a method: public and user RPCs only. Named audiences, not "all
 * but internal", so an audience added later stays off the browser port until someone decides.
 */
export function servedByGateway({ audience }: MethodAccess): boolean {
  return audience === Audience.PUBLIC || audience === Audience.USER;
}
