// A @grpc/grpc-js server interceptor (grpc-js >= 1.10): verifies the bearer token of each call
// before its handler runs; the handler reads the principal with principalOf(call).
import * as grpc from "@grpc/grpc-js";
import type { Policy, Principal } from "../types.js";
import type { TokenVerifier } from "../verifier.js";
import { bearerToken, challenge, grpcCode, policyFor } from "./http.js";

const principals = new WeakMap<grpc.Metadata, Principal>();

/** The principal of a call that passed the interceptor (undefined on a route without a policy). */
export function principalOf(call: { readonly metadata: grpc.Metadata }): Principal | undefined {
  return principals.get(call.metadata);
}

export interface GrpcInterceptorOptions {
  /** The policy of every method without an entry in `policies`. */
  readonly policy?: Policy;
  /** Per method, by path (`/package.Service/Method`): a policy, or false for no token at all. */
  readonly policies?: Readonly<Record<string, Policy | false>>;
}

export function grpcInterceptor(verifier: TokenVerifier, options: GrpcInterceptorOptions = {}): grpc.ServerInterceptor {
  return (methodDescriptor, call) => {
    const policy = policyFor(methodDescriptor.path, options.policies, options.policy ?? {});
    if (policy === false) return new grpc.ServerInterceptingCall(call);
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            const header = metadata.get("authorization")[0];
            void verifier.verify(bearerToken(typeof header === "string" ? header : undefined), policy).then((result) => {
              if (result.ok) {
                principals.set(metadata, result.principal);
                mdNext(metadata);
                return;
              }
              const trailers = new grpc.Metadata();
              const value = challenge(result);
              if (value) trailers.set("www-authenticate", value);
              call.sendStatus({ code: grpcCode(result), details: result.reason, metadata: trailers });
            });
          },
        });
      },
    });
  };
}
