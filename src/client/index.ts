// grpc-identity/client: verify this identity service's access tokens in a backend service.
export { createTokenVerifier, type TokenVerifier, type TokenVerifierOptions, type StreamState } from "./verifier.js";
export type { ClientTls } from "./rpc.js";
export type { Accepted, InactiveReason, Policy, Principal, Refusal, RefusalReason, ServicePrincipal, UserPrincipal, VerifyResult } from "./types.js";
export { applyPolicy } from "./policy.js";
export { bearerToken, challenge, httpStatus } from "./middleware/http.js";
export { grpcInterceptor, principalOf } from "./middleware/grpc.js";
export { connectInterceptor, principalKey } from "./middleware/connect.js";
export { expressMiddleware } from "./middleware/express.js";
export { fastifyPlugin } from "./middleware/fastify.js";
