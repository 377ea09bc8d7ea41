// Token checks over plain HTTP on the gateway, for what cannot speak gRPC (issue 13):
// - GET /authz: forward authentication, the contract of nginx `auth_request`, Traefik
//   ForwardAuth, Caddy `forward_auth` and Envoy's HTTP ext_authz. The proxy passes the client's
//   `Authorization` header; 200 with the principal in `X-Identity-*` headers admits the request,
//   401 with `WWW-Authenticate` refuses it. Only a proxy may ask: a peer in TRUSTED_PROXIES, or a
//   caller with a service credential holding `authz.check`.
// - POST /oauth2/introspect: RFC 7662 token introspection for resource-server libraries in any
//   language: a form-encoded `token`, a JSON answer. The caller authenticates as a service
//   (`client_secret_basic` with the service account's name and key, or the key as a bearer
//   credential, or `x-service-key`) holding `tokens.verify`.
// Both answer from the same introspection as VerifyToken: signature, claims and revocation, from
// memory. Answers are `Cache-Control: no-store`; a proxy that caches them decides for how long.
import type http from "node:http";
import type { Verification } from "../domain/tokens/claims.js";
import { AppError } from "../domain/errors.js";
import type { Logger } from "../logger.js";
import { bearerOf, normalizeAddress, type CallInfo } from "../services/call.js";
import type { ServiceCaller } from "../domain/callers/callers.js";
import { ERROR_REASONS } from "../error-reasons.js";
import { sendJson } from "./web-server.js";
import { AUTHZ_PERMISSION, BEARER_CHALLENGE, identityHeaders, INVALID_TOKEN_CHALLENGE } from "../services/forward-auth.js";

export const AUTHZ_PATH = "/authz";
export const INTROSPECT_PATH = "/oauth2/introspect";

/** The permission introspection needs (as VerifyToken does). */
export const INTROSPECT_PERMISSION = "tokens.verify";

/** Larger introspection bodies are refused (a token is at most 4 KiB). */
const MAX_FORM_BYTES = 8 * 1024;

export interface HttpAuthDeps {
  introspect(token: string, audience?: string): Promise<Verification>;
  /**
   * Admits the calling service to `permission` from its credential (the call's `x-service-key`
   * or `authorization: Bearer isk_...`), as an internal RPC is admitted, or throws an AppError;
   * answers the service, undefined for the development loopback exemption.
   */
  admit(info: CallInfo, permission: string): ServiceCaller | undefined;
  /** TRUSTED_PROXIES: a proxy there may ask /authz without a credential. */
  trustedProxy(address: string): boolean;
  readonly logger?: Logger;
}

/** Handles /authz and /oauth2/introspect; returns false for any other request. */
export function createHttpAuth(deps: HttpAuthDeps): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === AUTHZ_PATH) {
      void forwardAuth(req, res, deps).catch((err: unknown) => failed(res, deps, path, err));
      return true;
    }
    if (path === INTROSPECT_PATH) {
      void introspection(req, res, deps).catch((err: unknown) => failed(res, deps, path, err));
      return true;
    }
    return false;
  };
}

async function forwardAuth(req: http.IncomingMessage, res: http.ServerResponse, deps: HttpAuthDeps): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") return sendJson(res, 405, { error: "method_not_allowed" }, { allow: "GET, HEAD" });
  const peer = normalizeAddress(req.socket.remoteAddress);
  if (!deps.trustedProxy(peer)) {
    const refusal = admission(deps, infoOf(req, peer, header(req, "x-service-key")), AUTHZ_PERMISSION);
    if (refusal) return refuseCaller(res, deps, AUTHZ_PATH, peer, refusal);
  }
  const token = bearerOf(header(req, "authorization"));
  if (token === undefined) {
    // RFC 6750 §3.1: no credentials, no error code.
    return sendJson(res, 401, { error: "unauthorized" }, { "www-authenticate": BEARER_CHALLENGE });
  }
  const verification = await deps.introspect(token);
  if (!verification.active) {
    deps.logger?.info({ rpc: `GET ${AUTHZ_PATH}`, status: 401, reason: verification.reason, peer }, "forward auth refused");
    return sendJson(res, 401, { error: "invalid_token" }, { "www-authenticate": INVALID_TOKEN_CHALLENGE });
  }
  sendJson(res, 200, { active: true }, identityHeaders(verification.claims));
}

async function introspection(req: http.IncomingMessage, res: http.ServerResponse, deps: HttpAuthDeps): Promise<void> {
  if (req.method !== "POST") return sendJson(res, 405, { error: "invalid_request", error_description: "use POST" }, { allow: "POST" });
  const peer = normalizeAddress(req.socket.remoteAddress);
  const credential = clientCredential(req);
  if (credential === "malformed") return refuseCaller(res, deps, INTROSPECT_PATH, peer, new AppError("SERVICE_KEY_INVALID", "malformed client authentication"));
  const refusal = admission(deps, infoOf(req, peer, credential?.key), INTROSPECT_PERMISSION, credential?.name);
  if (refusal) return refuseCaller(res, deps, INTROSPECT_PATH, peer, refusal);
  const type = (header(req, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    return sendJson(res, 400, { error: "invalid_request", error_description: "the body must be application/x-www-form-urlencoded" });
  }
  const body = await readBody(req, MAX_FORM_BYTES);
  if (body === undefined) return sendJson(res, 413, { error: "invalid_request", error_description: "the body is too large" });
  const form = new URLSearchParams(body);
  const token = form.get("token");
  if (token === null || token === "") return sendJson(res, 400, { error: "invalid_request", error_description: "token is required" });
  const verification = await deps.introspect(token, form.get("audience") ?? undefined);
  // RFC 7662 §2.2: an inactive token says nothing more.
  if (!verification.active) return sendJson(res, 200, { active: false });
  const c = verification.claims;
  const common = { active: true, token_type: "Bearer", iss: c.iss, sub: c.sub, jti: c.jti, iat: c.iat, exp: c.exp };
  sendJson(
    res,
    200,
    c.kind === "user"
      ? { ...common, aud: c.aud, sid: c.sid, role: c.role, amr: c.amr, ...(c.username ? { username: c.username } : {}) }
      : { ...common, aud: c.aud.length === 1 ? c.aud[0] : c.aud, client_id: c.service, scope: c.scope.join(" ") },
  );
}

/** The refusal of `admit`, or undefined when the caller is admitted (as `name`, when one is given). */
function admission(deps: HttpAuthDeps, info: CallInfo, permission: string, name?: string): AppError | undefined {
  try {
    const caller = deps.admit(info, permission);
    // client_secret_basic: the key must be the named account's.
    if (name !== undefined && caller?.name !== name) return new AppError("SERVICE_KEY_INVALID", `the key presented for ${JSON.stringify(name)} is not that account's`);
    return undefined;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
}

function refuseCaller(res: http.ServerResponse, deps: HttpAuthDeps, path: string, peer: string, refusal: AppError): void {
  deps.logger?.info({ rpc: path, status: refusal.reason, reason: refusal.reason, detail: refusal.message, peer }, "http auth caller refused");
  const { code } = ERROR_REASONS[refusal.reason];
  if (code === "UNAUTHENTICATED") {
    return sendJson(res, 401, { error: "invalid_client", reason: refusal.reason }, { "www-authenticate": 'Basic realm="identity"' });
  }
  sendJson(res, 403, { error: "access_denied", reason: refusal.reason });
}

function failed(res: http.ServerResponse, deps: HttpAuthDeps, path: string, err: unknown): void {
  deps.logger?.error({ rpc: path, err }, "http auth failed");
  if (!res.headersSent) sendJson(res, 500, { error: "server_error" });
  else res.destroy();
}

/** The key a caller of /oauth2/introspect presents: Basic (name:key), Bearer, or x-service-key. */
function clientCredential(req: http.IncomingMessage): { name?: string; key: string } | "malformed" | undefined {
  const authorization = header(req, "authorization");
  if (authorization !== undefined) {
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) return "malformed";
      // RFC 6749 §2.3.1: both parts are form-encoded.
      try {
        return { name: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")), key: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " ")) };
      } catch {
        return "malformed";
      }
    }
    const token = bearerOf(authorization);
    if (token !== undefined) return { key: token };
    return "malformed";
  }
  const key = header(req, "x-service-key");
  return key === undefined ? undefined : { key };
}

/**
 * The call as caller resolution sees it: the service key found above, and never the request's
 * `authorization` (at /authz it is the person's token being checked, not the caller's).
 */
function infoOf(req: http.IncomingMessage, peer: string, serviceKey: string | undefined): CallInfo {
  return {
    header: (name) => (name === "x-service-key" ? serviceKey : name === "authorization" ? undefined : header(req, name)),
    peerAddress: peer,
  };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        resolve(undefined);
        req.removeAllListeners("data");
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.once("error", reject);
  });
}
