// The end user's address (issue 12, item 4). Behind a BFF or a gateway every person arrives from
// the same TCP peer; a caller trusted to do so passes the person's address in x-forwarded-for.
// Trusted: a peer inside TRUSTED_PROXIES (both servers), or, on the gRPC port only, a call whose
// credentials hold the permission `client-address.forward`. From anyone else the header is
// ignored. The address is the standard right-to-left walk: the nearest hop that is not itself a
// trusted proxy. A header that does not parse (not an IP, too long, too many hops) is ignored as a
// whole, never an error: the peer address counts.
import { isIP } from "node:net";
import type { Permission } from "../domain/callers/permissions.js";
import type { CallInfo } from "./call.js";

/** The permission that lets a service pass the end user's address. */
export const FORWARD_PERMISSION: Permission = "client-address.forward";

/** Longer headers are ignored (no legitimate chain of proxies comes near it). */
export const MAX_FORWARDED_BYTES = 1024;
/** More hops than this are ignored. */
export const MAX_FORWARDED_HOPS = 16;

export interface ForwardingPolicy {
  /** proxyaddr.compile(TRUSTED_PROXIES): whether the hop at `index` (0 = the TCP peer) is a trusted proxy. */
  readonly trusted: (address: string, index: number) => boolean;
  /**
   * Whether a service caller holding client-address.forward (resolved by the call policy) may
   * forward. Set on the gRPC port only: the gateway honours TRUSTED_PROXIES alone.
   */
  readonly honoursCallerPermission?: boolean;
}

/** The hops of an x-forwarded-for value, nearest last; undefined when any part is malformed. */
export function parseForwardedFor(value: string): string[] | undefined {
  if (value.length > MAX_FORWARDED_BYTES) return undefined;
  const hops = value.split(",");
  if (hops.length > MAX_FORWARDED_HOPS) return undefined;
  const addresses: string[] = [];
  for (const hop of hops) {
    const address = hop.trim();
    if (isIP(address) === 0) return undefined;
    addresses.push(address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address.toLowerCase());
  }
  return addresses;
}

/** The client address of a call: the peer's, or the one a trusted forwarder passes. */
export function resolveClientAddress(info: CallInfo, policy: ForwardingPolicy | undefined, callerMayForward = false): string {
  const peer = info.peerAddress;
  if (!policy) return peer;
  const header = info.header("x-forwarded-for");
  if (header === undefined || header === "") return peer;
  // The peer first: a forged header from an untrusted peer costs nothing more than this check.
  const peerTrusted = policy.trusted(peer, 0) || callerMayForward;
  if (!peerTrusted) return peer;
  const hops = parseForwardedFor(header);
  if (!hops) return peer;
  // Right to left: the first hop that is not a trusted proxy is the client; when all are, the farthest.
  let index = 0;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    index++;
    if (i === 0 || !policy.trusted(hop, index)) return hop;
  }
  return peer;
}
