// A Connect interceptor (connect-node, connect-express, connect-fastify: pass it in the
// adapter's `interceptors`): verifies the bearer token, puts the principal in the context values
// under principalKey (`ctx.values.get(principalKey)` in a handler), or throws a ConnectError
// whose metadata carries `WWW-Authenticate`.
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { Policy, Principal } from "../types.js";
import type { TokenVerifier } from "../verifier.js";
import { bearerToken, challenge, grpcCode, policyFor } from "./http.js";

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "the verified principal (grpc-identity/client)" });

export interface ConnectInterceptorOptions {
  /** The policy of every method without an entry in `policies`. */
  readonly policy?: Policy;
  /** Per method, by `package.Service/Method`: a policy, or false for no token at all. */
  readonly policies?: Readonly<Record<string, Policy | false>>;
}

const codes = { 16: Code.Unauthenticated, 7: Code.PermissionDenied, 14: Code.Unavailable } as const;

export function connectInterceptor(verifier: TokenVerifier, options: ConnectInterceptorOptions = {}): Interceptor {
  return (next) => async (req) => {
    const policy = policyFor(`${req.service.typeName}/${req.method.name}`, options.policies, options.policy ?? {});
    if (policy === false) return next(req);
    const result = await verifier.verify(bearerToken(req.header.get("authorization") ?? undefined), policy);
    if (!result.ok) {
      const value = challenge(result);
      throw new ConnectError(result.reason, codes[grpcCode(result)], value ? { "www-authenticate": value } : undefined);
    }
    req.contextValues.set(principalKey, result.principal);
    return next(req);
  };
}
