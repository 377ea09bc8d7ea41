// The single registration point: every service of the API (and the vendored ones we implement),
// each method wrapped in the call policy once, as plain data both servers read. The gRPC server
// mounts every method; the web gateway mounts the public and user ones, as each method's
// (identity.v1.access) option (or, for a vendored one, VENDORED_ACCESS) declares.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Audience } from "../../gen/identity/v1/access_pb.js";
import { Authorization } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { FederationService } from "../../gen/identity/v1/federation_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { PasskeyService } from "../../gen/identity/v1/passkey_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { AdminServiceImpl, type AdminServiceDeps } from "./admin-service.js";
import { authMetrics, AuthServiceImpl, type AuthServiceDeps } from "./auth-service.js";
import { envoyAuthzMetrics, EnvoyAuthzServiceImpl } from "./envoy-authz-service.js";
import { federationMetrics, FederationServiceImpl, type FederationServiceDeps } from "./federation-service.js";
import { mfaMetrics, MfaServiceImpl, type MfaServiceDeps } from "./mfa-service.js";
import { otpMetrics, OtpServiceImpl, type OtpServiceDeps } from "./otp-service.js";
import { passkeyMetrics, PasskeyServiceImpl, type PasskeyServiceDeps } from "./passkey-service.js";
import { methodAccess, type MethodAccess } from "./access.js";
import { withPolicy, type PolicyDeps, type PolicyHandler } from "./policy.js";
import type { RpcMetrics } from "./rpc-metrics.js";
import { tokenMetrics, TokenServiceImpl, type TokenServiceDeps } from "./token-service.js";

export type ServiceDeps = AuthServiceDeps & TokenServiceDeps & OtpServiceDeps & MfaServiceDeps & AdminServiceDeps & PasskeyServiceDeps & FederationServiceDeps & PolicyDeps;

/** Every service of the API (identity.v1), in the order both servers mount them. */
export const apiServices: readonly DescService[] = [AuthService, TokenService, OtpService, MfaService, AdminService, PasskeyService, FederationService];

/** Services of protos we vendor unchanged (proto/vendor) and implement, mounted after the API's. */
export const vendoredServices: readonly DescService[] = [Authorization];

/**
 * The services that answer from memory while PostgreSQL is unreachable (or a migration is
 * pending): grpc.health.v1 keeps them SERVING then, and every other service NOT_SERVING
 * (server/readiness.ts derives both from this set; nothing else names them). Health is per
 * service, not per method:
 * - identity.v1.TokenService: VerifyToken (signing keys, the revocation cache and the service
 *   account directory are in memory), WatchRevocations (the in-memory stream) and GetJwks. Its
 *   RefreshToken, RevokeToken and IssueServiceToken (which writes an audit row) need the database
 *   and answer UNAVAILABLE meanwhile.
 * - envoy.service.auth.v3.Authorization: Check introspects the token as VerifyToken does.
 */
export const servedWithoutDatabase: ReadonlySet<DescService> = new Set<DescService>([TokenService, Authorization]);

/**
 * RPCs for other backend services only (AUDIENCE_INTERNAL): served on the gRPC port, never by
 * the web gateway. Derived from the proto (and VENDORED_ACCESS); nothing here names a method.
 */
export const internalMethods: ReadonlySet<DescMethod> = new Set(
  [...apiServices, ...vendoredServices].flatMap((service) => service.methods).filter((method) => methodAccess(method).audience === Audience.INTERNAL),
);

export interface RouteMethod {
  readonly method: DescMethod;
  /** The implementation inside the call policy, which enforces `access`. */
  readonly handler: PolicyHandler;
  /** What the method's proto declares: who may call it, and so whether the gateway serves it. */
  readonly access: MethodAccess;
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
      access: methodAccess(method),
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
    route(AdminService, new AdminServiceImpl(deps), {}, deps),
    route(PasskeyService, new PasskeyServiceImpl(deps), passkeyMetrics, deps),
    route(FederationService, new FederationServiceImpl(deps), federationMetrics, deps),
    route(Authorization, new EnvoyAuthzServiceImpl(deps), envoyAuthzMetrics, deps),
  ];
}
