// The access each RPC declares in its proto ((identity.v1.access), src/services/access.ts), as
// the running servers apply it: the gateway serves exactly the public and user RPCs, every user
// RPC refuses a call without an access token, and an internal RPC refuses an unadmitted caller
// before its request is looked at.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { getOption, type DescMethod } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { access, Audience } from "../../gen/identity/v1/access_pb.js";
import { apiServices } from "../../src/services/routes.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";
import type { TransportName } from "../support/transports.js";

const t = setupService();

/** Every RPC, read from the generated descriptors (the same ones the servers mount). */
const METHODS: readonly DescMethod[] = apiServices.flatMap((service) => service.methods);
const audienceOf = (method: DescMethod) => getOption(method, access).audience;
const label = (method: DescMethod) => `${method.parent.name}/${method.name} (${Audience[audienceOf(method)]})`;

type AnyRpc = (request: object, options?: { headers?: Record<string, string> }) => Promise<unknown> | AsyncIterable<unknown>;

/** The code (and ErrorInfo reason) of calling `method` with an empty request over `transport`. */
async function answer(name: TransportName, method: DescMethod, headers: Record<string, string> = {}): Promise<{ code: Code | "OK"; reason: string }> {
  const client = createClient(method.parent, t.clients(name).transport) as unknown as Record<string, AnyRpc>;
  try {
    const call = client[method.localName]!({}, { headers });
    // A server stream answers with its first message, or fails before it.
    if (method.methodKind === "server_streaming") for await (const _ of call as AsyncIterable<unknown>) break;
    else await call;
    return { code: "OK", reason: "" };
  } catch (err) {
    const error = ConnectError.from(err);
    return { code: error.code, reason: error.findDetails(ErrorInfoSchema)[0]?.reason ?? "" };
  }
}

describe.each<TransportName>(["connect", "grpc-web"])("the gateway over %s", (name) => {
  it.each(METHODS.map((m) => [label(m), m] as const))("serves %s only if it is public or for users", async (_, method) => {
    const { code } = await answer(name, method, { "x-service-key": TEST_SERVICE_KEY });
    if (audienceOf(method) === Audience.INTERNAL) expect(code).toBe(Code.Unimplemented);
    else expect(code).not.toBe(Code.Unimplemented);
  });
});

describe.each<TransportName>(["grpc", "connect"])("user RPCs over %s", (name) => {
  const userMethods = METHODS.filter((m) => audienceOf(m) === Audience.USER);

  it("are the ones a signed-in person calls", () => {
    expect(userMethods.map((m) => m.name)).toEqual(expect.arrayContaining(["WhoAmI", "Logout", "ChangePassword", "SetupTotp", "GetMfaStatus"]));
  });

  it.each(userMethods.map((m) => [label(m), m] as const))("%s refuses a call without an access token", async (_, method) => {
    await t.expectUnchanged(async () => {
      expect(await answer(name, method)).toEqual({ code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
    });
  });
});

describe("an internal RPC over grpc", () => {
  const { tokens } = t.clients("grpc");

  it("refuses a wrong service key before looking at the request", async () => {
    // With the key, U+0000 in the token is INVALID_ARGUMENT; without it the caller learns nothing.
    await expectError(tokens.verifyToken({ token: "a\u0000b" }, { headers: { "x-service-key": TEST_SERVICE_KEY } }), { code: Code.InvalidArgument, fields: ["token"] });
    await expectError(tokens.verifyToken({ token: "a\u0000b" }, { headers: { "x-service-key": "not-the-service-key-0123456789abcdef" } }), {
      code: Code.PermissionDenied,
      reason: "SERVICE_KEY_INVALID",
    });
  });
});
