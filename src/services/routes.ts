// The single registration point: every service of the API, each method wrapped in the call policy
// once, as plain data both servers read. The gRPC server mounts every method; the web gateway
// mounts those not marked internal.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { authMetrics, AuthServiceImpl, type AuthServiceDeps } from "./auth-service.js";
import { mfaMetrics, MfaServiceImpl, type MfaServiceDeps } from "./mfa-service.js";
import { otpMetrics, OtpServiceImpl, type OtpServiceDeps } from "./otp-service.js";
import { withPolicy, type PolicyDeps, type PolicyHandler } from "./policy.js";
import type { RpcMetrics } from "./rpc-metrics.js";
import { tokenMetrics, TokenServiceImpl, type TokenServiceDeps } from "./token-service.js";

export type ServiceDeps = AuthServiceDeps & TokenServiceDeps & OtpServiceDeps & MfaServiceDeps & PolicyDeps;

/** RPCs for other backend services only: served on the gRPC port, never by the web gateway. */
export const internalMethods: ReadonlySet<DescMethod> = new Set([TokenService.method.verifyToken]);

export interface RouteMethod {
  readonly method: DescMethod;
  /** The implementation inside the call policy. */
  readonly handler: PolicyHandler;
  /** For backend services only (internalMethods): the gateway answers UNIMPLEMENTED. */
  readonly internal: boolean;
}

/** One proto service as the servers mount it: every method of its descriptor, in order. */
export interface Route {
  readonly service: DescService;
  readonly methods: readonly RouteMethod[];
}

function route<S extends DescService>(service: S, impl: ServiceImpl<S>, rpcMetrics: RpcMetrics<S>, deps: PolicyDeps): Route {
  return {
    service,
    methods: service.methods.map((method) => ({
      method,
      handler: withPolicy(method, impl, rpcMetrics, deps),
      internal: internalMethods.has(method),
    })),
  };
}

/** Builds every service once; both servers of an instance mount these same handlers. */
export function createRoutes(deps: ServiceDeps): readonly Route[] {
  return [
    route(AuthService, new AuthServiceImpl(deps), authMetrics, deps),
    route(TokenService, new TokenServiceImpl(deps), tokenMetrics, deps),
    route(OtpService, new OtpServiceImpl(deps), otpMetrics, deps),
    route(MfaService, new MfaServiceImpl(deps), mfaMetrics, deps),
  ];
}
