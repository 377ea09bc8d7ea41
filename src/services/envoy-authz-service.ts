// envoy.service.auth.v3.Authorization: Envoy's external authorization (the ext_authz HTTP filter,
// gRPC flavour), on the gRPC port only. Envoy asks for every request it proxies; the answer is the
// same as forward authentication over HTTP (GET /authz, src/server/http-auth.ts): the bearer
// token's principal in X-Identity-* headers, or 401 with WWW-Authenticate.
//
// A token that is missing or not active is an answer (a denial), never a gRPC error: Envoy treats
// an error by its failure_mode_allow setting, which may let the request through. Only a caller
// that the call policy does not admit (no service key, or one without authz.check; see
// VENDORED_ACCESS in access.ts) gets a gRPC error, before this code runs.
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { HeaderValueOption_HeaderAppendAction, type HeaderValueOptionSchema } from "../../gen/envoy/config/core/v3/base_pb.js";
import type { Authorization, CheckRequest, CheckResponseSchema } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { StatusCode } from "../../gen/envoy/type/v3/http_status_pb.js";
import type { Callers } from "../domain/callers/callers.js";
import type { Logger } from "../logger.js";
import { bearerOf, callInfo, callUserKey } from "./call.js";
import { BEARER_CHALLENGE, IDENTITY_HEADER_NAMES, identityHeaders, INVALID_TOKEN_CHALLENGE } from "./forward-auth.js";
import type { RpcMetrics } from "./rpc-metrics.js";

export interface EnvoyAuthzServiceDeps {
  readonly callers: Pick<Callers, "introspect">;
  readonly logger: Logger;
}

type CheckAnswer = MessageInitShape<typeof CheckResponseSchema>;
type HeaderOption = MessageInitShape<typeof HeaderValueOptionSchema>;

/** google.rpc.Code values of CheckResponse.status (Envoy admits on OK, denies on anything else). */
const RPC_OK = 0;
const RPC_UNAUTHENTICATED = 16;

/** No per-RPC metrics: the call policy counts calls; Envoy counts its allow/deny decisions itself. */
export const envoyAuthzMetrics: RpcMetrics<typeof Authorization> = {};

export class EnvoyAuthzServiceImpl implements ServiceImpl<typeof Authorization> {
  constructor(private readonly deps: EnvoyAuthzServiceDeps) {}

  async check(request: CheckRequest, ctx: HandlerContext): Promise<CheckAnswer> {
    const authorization = authorizationValues(request);
    // Two Authorization headers (header_map keeps duplicates) could be read differently by the
    // upstream: refused as a bad credential rather than guessing which one counts.
    if (authorization.length > 1) return this.denied(ctx, "AMBIGUOUS_AUTHORIZATION", INVALID_TOKEN_CHALLENGE, "invalid_token");
    const token = bearerOf(authorization[0]);
    // RFC 6750 §3.1: no bearer credential (none, or another scheme), no error code.
    if (token === undefined) return this.denied(ctx, "NO_BEARER_TOKEN", BEARER_CHALLENGE, "unauthorized");
    const verification = await this.deps.callers.introspect(token);
    if (!verification.active) return this.denied(ctx, verification.reason, INVALID_TOKEN_CHALLENGE, "invalid_token");
    const { claims } = verification;
    if (claims.kind === "user") ctx.values.set(callUserKey, claims.sub);
    const set = identityHeaders(claims);
    return {
      status: { code: RPC_OK },
      httpResponse: {
        case: "okResponse",
        value: {
          // OVERWRITE_IF_EXISTS_OR_ADD replaces a client's copy of each header set here. The
          // deprecated `append` stays unset: Envoy versions without append_action read that as
          // "do not append", which overwrites too.
          headers: Object.entries(set).filter(([, value]) => value !== "").map(([key, value]) => overwrite(key, value)),
          // Every other identity header, so that a client's copy of it never reaches the
          // upstream. Not the ones set above: Envoy applies `headers` first and
          // `headers_to_remove` after (ext_authz.cc, onComplete), so listing them would remove
          // the values just set.
          headersToRemove: IDENTITY_HEADER_NAMES.filter((name) => (set[name] ?? "") === ""),
        },
      },
    };
  }

  /** A 401 for Envoy to send to the client, and google.rpc UNAUTHENTICATED in `status`. */
  private denied(ctx: HandlerContext, reason: string, challenge: string, error: string): CheckAnswer {
    this.deps.logger.info({ rpc: "envoy.service.auth.v3.Authorization/Check", status: 401, reason, peer: callInfo(ctx).peerAddress }, "ext_authz refused");
    return {
      status: { code: RPC_UNAUTHENTICATED, message: error },
      httpResponse: {
        case: "deniedResponse",
        value: {
          status: { code: StatusCode.Unauthorized },
          headers: [overwrite("www-authenticate", challenge), overwrite("content-type", "application/json"), overwrite("cache-control", "no-store")],
          body: JSON.stringify({ error }),
        },
      },
    };
  }
}

function overwrite(key: string, value: string): HeaderOption {
  return { header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD };
}

/**
 * Every Authorization value of the request Envoy describes: from `headers` (names lower-cased by
 * Envoy, duplicates merged), or from `header_map` when Envoy is configured with
 * encode_raw_headers (duplicates kept, values in `raw_value`).
 */
function authorizationValues(request: CheckRequest): string[] {
  const http = request.attributes?.request?.http;
  if (!http) return [];
  const values: string[] = [];
  for (const [name, value] of Object.entries(http.headers)) if (name.toLowerCase() === "authorization") values.push(value);
  for (const { key, value, rawValue } of http.headerMap?.headers ?? []) {
    if (key.toLowerCase() === "authorization") values.push(rawValue.length > 0 ? Buffer.from(rawValue).toString("utf8") : value);
  }
  return values;
}
