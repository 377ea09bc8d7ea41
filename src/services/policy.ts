// Cross-cutting behaviour of every RPC, applied once to each ServiceImpl so both servers get
// exactly the same: a server-side deadline, error mapping and one log line per call.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { AppError } from "../domain/errors.js";
import { callInfo } from "./call.js";
import { toConnectError } from "./errors.js";

export interface PolicyDeps {
  readonly logger: Logger;
  readonly maxDeadlineMs: number;
}

type AnyUnary = (request: unknown, ctx: HandlerContext) => unknown;

export function withPolicy<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, deps: PolicyDeps): Partial<ServiceImpl<S>> {
  const wrapped: Record<string, AnyUnary> = {};
  for (const method of service.methods) {
    const handler = (impl as Record<string, AnyUnary | undefined>)[method.localName];
    wrapped[method.localName] = wrap(method, handler?.bind(impl), deps);
  }
  return wrapped as Partial<ServiceImpl<S>>;
}

function wrap(method: DescMethod, handler: AnyUnary | undefined, { logger, maxDeadlineMs }: PolicyDeps): AnyUnary {
  const rpc = `${method.parent.typeName}/${method.name}`;
  return async (request, ctx) => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!handler) throw new AppError("NOT_IMPLEMENTED", `${rpc} is not implemented yet`);
      const budget = Math.min(ctx.timeoutMs() ?? maxDeadlineMs, maxDeadlineMs);
      const response = await Promise.race([
        handler(request, ctx),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new AppError("DEADLINE_EXCEEDED", `${rpc} exceeded ${budget} ms`)), budget);
        }),
      ]);
      logger.info({ rpc, protocol: ctx.protocolName, status: "OK", ms: elapsed(started) }, "rpc");
      return response;
    } catch (err) {
      const error = toConnectError(err);
      const fields = {
        rpc,
        protocol: ctx.protocolName,
        status: Code[error.code],
        ms: elapsed(started),
        peer: callInfo(ctx).peerAddress,
        reason: err instanceof AppError ? err.reason : undefined,
        detail: err instanceof Error ? err.message : String(err),
      };
      if (error.code === Code.Internal || error.code === Code.Unavailable) {
        logger.error({ ...fields, err }, "rpc failed");
      } else {
        logger.info(fields, "rpc");
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}
