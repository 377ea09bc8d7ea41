// A span per RPC, on both servers alike: wrapped around the call policy (policy.ts) only when
// tracing is on, so that the policy's log line and every database query of the call run inside
// it. The caller's W3C `traceparent` (gRPC metadata or HTTP header: callInfo reads either) is the
// parent. Nothing of the request or response goes into the span: messages carry passwords,
// codes and tokens.
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Span } from "@opentelemetry/api";
import { runInSpan, type Tracing } from "../tracing.js";
import { callInfo } from "./call.js";
import type { PolicyHandler } from "./policy.js";

/**
 * The codes that make a server span an error, as OpenTelemetry's RPC conventions list them for
 * gRPC servers: the service failed. A refusal (UNAUTHENTICATED, INVALID_ARGUMENT, ...) is the
 * service doing its job; its code is in rpc.grpc.status_code.
 */
// @opentelemetry/api's SpanKind.SERVER and SpanStatusCode.ERROR, by value: this file is loaded
// with tracing off too, and imports OpenTelemetry's types only (see src/tracing.ts).
const SPAN_KIND_SERVER = 1;
const STATUS_ERROR = 2;

const SERVER_ERRORS: ReadonlySet<Code> = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

/** `handler` (a method inside the call policy) with a server span around each call. */
export function traced(method: DescMethod, handler: PolicyHandler, tracing: Tracing): PolicyHandler {
  const name = `${method.parent.typeName}/${method.name}`;
  const service = method.parent.typeName;
  const rpcMethod = method.name;
  const start = (ctx: HandlerContext): Span => {
    const info = callInfo(ctx);
    return tracing.tracer.startSpan(
      name,
      {
        kind: SPAN_KIND_SERVER,
        attributes: {
          "rpc.system": ctx.protocolName === "connect" ? "connect_rpc" : "grpc",
          "rpc.service": service,
          "rpc.method": rpcMethod,
          "network.protocol.name": ctx.protocolName,
          "network.peer.address": info.peerAddress,
        },
      },
      tracing.extract((header) => info.header(header)),
    );
  };
  if (method.methodKind === "server_streaming") {
    return (request, ctx) => tracedStream(start(ctx), handler, request, ctx);
  }
  return (request, ctx) => {
    const span = start(ctx);
    let result: unknown;
    try {
      result = runInSpan(span, () => handler(request, ctx));
    } catch (err) {
      end(span, err);
      throw err;
    }
    if (typeof result !== "object" || result === null || typeof (result as { then?: unknown }).then !== "function") {
      end(span, undefined);
      return result;
    }
    return (result as PromiseLike<unknown>).then(
      (response) => {
        end(span, undefined);
        return response;
      },
      (err: unknown) => {
        end(span, err);
        throw err;
      },
    );
  };
}

/** A stream's span lasts until it ends; each step of the handler runs inside it. */
async function* tracedStream(span: Span, handler: PolicyHandler, request: unknown, ctx: HandlerContext): AsyncGenerator<unknown> {
  let failure: unknown;
  let iterator: AsyncIterator<unknown> | undefined;
  try {
    iterator = runInSpan(span, () => (handler(request, ctx) as AsyncIterable<unknown>)[Symbol.asyncIterator]());
    for (;;) {
      const step = await runInSpan(span, () => iterator!.next());
      if (step.done) break;
      yield step.value;
    }
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    // The client left early: the policy's own ending (its log line, its metric) runs in the span too.
    if (failure === undefined && iterator?.return !== undefined) await runInSpan(span, () => iterator!.return!());
    end(span, failure);
  }
}

function end(span: Span, err: unknown): void {
  const code: number = err === undefined ? 0 : ConnectError.from(err).code; // 0: OK, which Code does not name
  span.setAttribute("rpc.grpc.status_code", code);
  if (SERVER_ERRORS.has(code as Code)) span.setStatus({ code: STATUS_ERROR, message: Code[code] });
  span.end();
}
