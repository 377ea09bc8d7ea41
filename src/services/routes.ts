// The single registration point: every service of the API, wrapped in the call policy once.
// Both servers mount what this registers; the web gateway leaves out the internal RPCs.
import type { DescMethod } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { AuthServiceImpl, type AuthServiceDeps } from "./auth-service.js";
import { MfaServiceImpl, type MfaServiceDeps } from "./mfa-service.js";
import { OtpServiceImpl, type OtpServiceDeps } from "./otp-service.js";
import { withPolicy, type PolicyDeps } from "./policy.js";
import { TokenServiceImpl, type TokenServiceDeps } from "./token-service.js";

export type ServiceDeps = AuthServiceDeps & TokenServiceDeps & OtpServiceDeps & MfaServiceDeps & PolicyDeps;

/** RPCs for other backend services only: served on the gRPC port, never by the web gateway. */
export const internalMethods: ReadonlySet<DescMethod> = new Set([TokenService.method.verifyToken]);

export const services = [AuthService, TokenService, OtpService, MfaService] as const;

export function routes(deps: ServiceDeps) {
  return (router: ConnectRouter): void => {
    router.service(AuthService, withPolicy(AuthService, new AuthServiceImpl(deps), deps));
    router.service(TokenService, withPolicy(TokenService, new TokenServiceImpl(deps), deps));
    router.service(OtpService, withPolicy(OtpService, new OtpServiceImpl(deps), deps));
    router.service(MfaService, withPolicy(MfaService, new MfaServiceImpl(deps), deps));
  };
}
