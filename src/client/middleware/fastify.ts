// A Fastify (4 or 5) plugin, typed structurally (Fastify is not imported): decorates the request
// with `principal` and verifies the bearer token in an onRequest hook, with the route's policy
// from its config (`{ config: { identity: { requireRole: "admin" } } }`; `identity: false` lets
// a route through without a token) or the plugin's. The plugin is not encapsulated (it sets
// `Symbol.for("skip-override")`, as fastify-plugin does), so it covers the routes of the
// instance it is registered on.
import type { Policy, Principal } from "../types.js";
import type { TokenVerifier } from "../verifier.js";
import { bearerToken, challenge, httpStatus, refusalBody } from "./http.js";

interface FastifyRequestLike {
  readonly headers: { readonly authorization?: string | undefined };
  readonly routeOptions?: { readonly config?: unknown };
  principal: Principal | null;
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(body: string): unknown;
}
interface FastifyLike {
  decorateRequest(name: string, value: null): unknown;
  // `any`: Fastify's own request and reply types (generic over the route) must be accepted here
  // without importing them; the hook below narrows them to the *Like interfaces it uses.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addHook(name: "onRequest", hook: (request: any, reply: any) => Promise<unknown>): unknown;
}

export interface FastifyPluginOptions {
  /** The policy of routes whose config has no `identity`. */
  readonly policy?: Policy;
}

type Plugin = (fastify: FastifyLike, options: unknown) => Promise<void>;

export function fastifyPlugin(verifier: TokenVerifier, options: FastifyPluginOptions = {}): Plugin {
  const plugin = async (fastify: FastifyLike): Promise<void> => {
    fastify.decorateRequest("principal", null);
    fastify.addHook("onRequest", async (request: FastifyRequestLike, reply: FastifyReplyLike) => {
      const config = request.routeOptions?.config as { identity?: Policy | false } | undefined;
      const policy = config?.identity === undefined ? options.policy : config.identity;
      if (policy === false) return undefined;
      const result = await verifier.verify(bearerToken(request.headers.authorization), policy);
      if (result.ok) {
        request.principal = result.principal;
        return undefined;
      }
      const value = challenge(result);
      if (value) reply.header("www-authenticate", value);
      reply.code(httpStatus(result)).header("content-type", "application/json").header("cache-control", "no-store").send(refusalBody(result));
      return reply;
    });
  };
  return Object.assign(plugin, { [Symbol.for("skip-override")]: true });
}
