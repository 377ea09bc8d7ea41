// Transport-neutral facts about the current call, set by each server before a handler runs:
// request headers and the peer address. Handlers read them through these helpers only.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { ClientMeta } from "../domain/audit/audit.js";
import type { Caller, Callers, ServiceCaller } from "../domain/callers/callers.js";
import type { Actor } from "../domain/admin/roles.js";
import { FORWARD_PERMISSION, resolveClientAddress, type ForwardingPolicy } from "./client-address.js";

/**
 * The gateway's view of one browser call; src/server/refresh-cookie.ts builds it and
 * browser-session.ts reads it.
 */
export interface BrowserSession {
  /** The refresh token the request's cookie carries, if any. */
  readonly refreshToken: string | undefined;
  /** A Set-Cookie value that stores `refreshToken` until `expiresAt`. */
  storeCookie(refreshToken: string, expiresAt: Date): string;
  /** A Set-Cookie value that deletes the cookie. */
  clearCookie(): string;
}

export interface CallInfo {
  /** First value of a request header (lower-case name), or undefined. */
  header(name: string): string | undefined;
  /** IP address of the TCP peer. */
  readonly peerAddress: string;
  /**
   * Who may pass the end user's address in x-forwarded-for (client-address.ts); without it the
   * header is ignored. Read only by clientMeta, once per call.
   */
  readonly forwarding?: ForwardingPolicy;
  /**
   * Set by the web gateway for a call from a page in a browser (it carries an Origin header the
   * gateway trusts): the refresh token then travels in an HttpOnly cookie, never in a message.
   * Undefined on the gRPC port and for other gateway clients.
   */
  readonly browser?: BrowserSession;
  /** Set by the web gateway for every call it serves (the browser port); unset on the gRPC port. */
  readonly gateway?: boolean;
  /**
   * Sets a response header without building a WHATWG Headers object; the gRPC server provides
   * it (it writes grpc-js metadata directly, and also returns it with an error). Elsewhere,
   * ctx.responseHeader is used.
   */
  setResponseHeader?(name: string, value: string): void;
  /**
   * The client certificate of a mutual-TLS connection on the gRPC port, verified against
   * TLS_CLIENT_CA_FILE; undefined without one (plaintext, no certificate, the gateway). Built
   * on first use and kept for the call: calls that never ask pay nothing.
   */
  clientCertificate?(): ClientCertificate | undefined;
}

/** What identifies the service behind a verified client certificate (SPIFFE ID, subject). */
export interface ClientCertificate {
  /** The subject's distinguished name, one attribute per line as node prints it (`CN=billing`). */
  readonly subject: string;
  /** URI subject alternative names (a SPIFFE ID: `spiffe://example.org/billing`). */
  readonly uris: readonly string[];
  /** DNS subject alternative names. */
  readonly dnsNames: readonly string[];
  readonly serialNumber: string;
  /** SHA-256 of the DER certificate, colon-separated hex as node prints it. */
  readonly fingerprint256: string;
}

/** The verified client certificate of the call, if it has one (see CallInfo.clientCertificate). */
export function clientCertificate(ctx: HandlerContext): ClientCertificate | undefined {
  return callInfo(ctx).clientCertificate?.();
}

/** Sets a response header the cheapest way the call's transport offers. */
export function setResponseHeader(ctx: HandlerContext, name: string, value: string): void {
  const info = callInfo(ctx);
  if (info.setResponseHeader) info.setResponseHeader(name, value);
  else ctx.responseHeader.set(name, value);
}

export const callInfoKey = createContextKey<CallInfo>(
  { header: () => undefined, peerAddress: "" },
  { description: "identity call info" },
);

export function callInfo(ctx: HandlerContext): CallInfo {
  return ctx.values.get(callInfoKey);
}

/** Strips the IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` reads as `127.0.0.1`. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return "";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

export function isLoopback(address: string): boolean {
  return address === "::1" || address.startsWith("127.");
}

/** The call's client address, resolved on first use (clientMeta) and kept for the call. */
const clientAddressKey = createContextKey<string | undefined>(undefined, { description: "client address" });

/** The backend service calling, set by the call policy before any handler runs (policy.ts). */
export const serviceCallerKey = createContextKey<ServiceCaller | undefined>(undefined, { description: "service caller" });

/**
 * The backend service behind the call (a service account by key or certificate, or a bootstrap
 * caller), resolved once by the call policy for every RPC; undefined when no service credential
 * came with the call.
 */
export function serviceCaller(ctx: HandlerContext): ServiceCaller | undefined {
  return ctx.values.get(serviceCallerKey);
}

/**
 * The client of the call, for rate limits, sessions, activity and audit: every flow takes the
 * address from here. It is the end user's address a trusted forwarder passed (client-address.ts),
 * else the TCP peer's. Resolved lazily: calls that never ask (VerifyToken) pay nothing. `caller`
 * names the service calling, if one is.
 */
export function clientMeta(ctx: HandlerContext): ClientMeta {
  const info = callInfo(ctx);
  const service = serviceCaller(ctx);
  let ip = ctx.values.get(clientAddressKey);
  if (ip === undefined) {
    // Forwarding needs a real credential holding the permission: the development loopback
    // exemption names no caller.
    const callerMayForward = info.forwarding?.honoursCallerPermission === true && service !== undefined && service.permissions.has(FORWARD_PERMISSION);
    ip = resolveClientAddress(info, info.forwarding, callerMayForward);
    ctx.values.set(clientAddressKey, ip);
  }
  return { ip, userAgent: info.header("user-agent") ?? "", caller: service?.name };
}

/** The token of an `authorization: Bearer <token>` header. */
export function bearerToken(ctx: HandlerContext): string | undefined {
  return bearerOf(callInfo(ctx).header("authorization"));
}

/** The token of an `Authorization: Bearer <token>` value; undefined for any other value. */
export function bearerOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(value)?.[1];
}

/** Who performs an AUDIENCE_ADMIN call, set by the call policy once it admitted it (policy.ts admitAdmin). */
export const adminActorKey = createContextKey<Actor | undefined>(undefined, { description: "administrative actor" });

/** The actor of an AUDIENCE_ADMIN call; throws when the call policy did not admit one (a wiring error). */
export function adminActor(ctx: HandlerContext): Actor {
  const actor = ctx.values.get(adminActorKey);
  if (actor === undefined) throw new Error("AdminService call without an admitted actor");
  return actor;
}

/** Set once a handler knows who calls, for the call's log line. */
export const callUserKey = createContextKey<string | undefined>(undefined, { description: "authenticated user id" });

/** The person behind the call's bearer token (UNAUTHENTICATED when none), noted for the log. */
export async function authenticate(ctx: HandlerContext, callers: Callers): Promise<Caller> {
  const caller = await callers.authenticate(bearerToken(ctx));
  ctx.values.set(callUserKey, caller.userId);
  return caller;
}

/**
 * Base of the ServiceImpls whose RPCs act for a signed-in person: `caller(ctx)` is `authenticate`
 * with the service's own Callers.
 */
export abstract class SignedInRpcs<D extends { readonly callers: Callers }> {
  constructor(protected readonly deps: D) {}

  protected caller(ctx: HandlerContext): Promise<Caller> {
    return authenticate(ctx, this.deps.callers);
  }
}
