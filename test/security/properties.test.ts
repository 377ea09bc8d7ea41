// Property-based tests of hostile input (issue 10, item 6), over every RPC of every service and
// all three transports: arbitrary strings, with U+0000 and lone surrogates mixed in, in every
// string field; arbitrary bytes as the message body. Whatever comes in, the answer is never
// INTERNAL or UNKNOWN, a refusal stores nothing (but the failures that are counted or audited
// by design), and the service still answers afterwards. Runs are bounded and seeded: FC_SEED / FC_RUNS override, and a failure prints the
// seed and the shrunk counterexample.
//
// Encodings are hostile too: requests name no encoding, gzip (over bytes that are not gzip) or br
// (which the service does not take), and unframed gRPC-web bodies keep whatever flags their
// first byte has (the compressed flag without an encoding included). A body that is not valid
// protobuf is INVALID_ARGUMENT on every transport (MALFORMED_FRAME on the gateway).
import { create, ScalarType, toBinary, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { PASSWORD, uniqueEmail } from "../support/accounts.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { prepared, setupService } from "../support/setup.js";
import { createGrpcJsTransport } from "../support/transports.js";
import { internalMethods } from "../../src/services/routes.js";
import { frame, rawConnect, rawGrpc, rawGrpcWeb, type RawAnswer } from "./raw-calls.js";
import { wellFormed } from "../support/text.js";

/** gRPC status 0; Connect's Code enum starts at 1. */
const OK = 0 as Code;
const SEED = Number(process.env.FC_SEED ?? 1006);
const RUNS = Number(process.env.FC_RUNS ?? 25);
const SERVICES: readonly DescService[] = [AuthService, TokenService, OtpService, MfaService];
const METHODS: readonly DescMethod[] = SERVICES.flatMap((s) => s.methods);

// Limits far above what the runs reach, so that RESOURCE_EXHAUSTED never hides an answer.
const ENV = {
  ARGON2_MEMORY_KIB: "1024",
  ARGON2_ITERATIONS: "1",
  LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR: "100",
  LOGIN_MAX_FAILURES_PER_IP_PER_HOUR: "1000000",
  OTP_MAX_SENDS_PER_IP_PER_HOUR: "1000000",
  OTP_MAX_SENDS_PER_DESTINATION_PER_HOUR: "100",
  OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "1000000",
  OTP_RESEND_COOLDOWN_SECONDS: "1",
};

const t = setupService({ env: ENV });

/** One account whose bearer token half of the calls carry, so user RPCs get past authentication. */
const account = t.prepare(() => t.signUp("prop"));
/**
 * Another account, never named by the properties, that the liveness check signs in to: the
 * first one's password checks are guessed wrong on purpose and land in its failure limits.
 */
const liveness = t.prepare(() => t.signUp("alive"));

function headersFor(authed: boolean): Record<string, string> {
  return authed ? { authorization: `Bearer ${account().tokens.accessToken}`, "x-service-key": TEST_SERVICE_KEY } : { "x-service-key": TEST_SERVICE_KEY };
}

// ---------------------------------------------------------------------------------------------
// Generators driven by the request descriptors.


const HOSTILE = ["\u0000", "\ud800", "\udbff", "\udc00", "\udfff"] as const;

/** Arbitrary text: any UTF-16 (lone surrogates included), plausible values, either with U+0000 or a surrogate put in, page-token look-alikes. */
function text(fieldName: string): fc.Arbitrary<string> {
  const plausible = fc.constantFrom("", "a@example.com", uniqueEmail("prop"), "+14155550123", "123456", "01234567-89ab-cdef-0123-456789abcdef", "x".repeat(300), "中".repeat(6000));
  const base = fc.oneof(plausible, fc.string({ unit: "binary" }), fc.string({ unit: "grapheme" }), fc.string({ unit: fc.constantFrom(...HOSTILE, "a", "é", "\ud83d\ude00") }));
  const injected = fc
    .tuple(base, fc.nat(400), fc.constantFrom(...HOSTILE))
    .map(([s, at, bad]) => s.slice(0, at % (s.length + 1)) + bad + s.slice(at % (s.length + 1)));
  // Shaped like a page token (base64url of [time, id]) with any time JavaScript can hold and ids
  // that are UUIDs, merely look like one, or are anything.
  const tokenShaped = fc
    .tuple(
      fc.oneof({ arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), weight: 3 }, { arbitrary: fc.string(), weight: 1 }),
      fc.oneof(fc.uuid(), fc.stringMatching(/^[0-9a-f-]{36}$/), fc.string()),
    )
    .map((cursor) => Buffer.from(JSON.stringify(cursor)).toString("base64url"));
  return fieldName === "page_token" ? fc.oneof({ arbitrary: tokenShaped, weight: 4 }, base, injected) : fc.oneof(base, injected, tokenShaped);
}

function scalarArbitrary(scalar: ScalarType, fieldName: string): fc.Arbitrary<unknown> {
  switch (scalar) {
    case ScalarType.STRING:
      return text(fieldName);
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      // Mostly small counts (a page_size that passes lets the rest of the request be looked at).
      return fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer());
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    default:
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  }
}

function fieldArbitrary(field: DescField): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalarArbitrary(field.scalar, field.name);
    case "enum":
      return fc.constantFrom(...field.enum.values.map((v) => v.number));
    case "list":
      if (field.listKind === "scalar") return fc.array(scalarArbitrary(field.scalar, field.name), { maxLength: 3 });
      break;
    case "message":
      // The one message type requests hold: a google.protobuf.Duration (max_auth_age,
      // heartbeat_interval), unset or any a client can encode (JSON needs the sign of seconds and
      // nanos to agree, and the range of ±10,000 years): zero, negative, tiny and huge included.
      if (field.message.typeName === "google.protobuf.Duration") {
        const seconds = fc.oneof(fc.bigInt({ min: -100n, max: 100_000n }), fc.bigInt({ min: -315_576_000_000n, max: 315_576_000_000n }));
        const duration = fc.tuple(seconds, fc.integer({ min: 0, max: 999_999_999 })).map(([s, n]) => ({ seconds: s, nanos: s < 0n ? -n : n }));
        return fc.option(duration, { nil: undefined });
      }
      // UpdateProfile's update_mask: paths Connect JSON can carry (it writes them lowerCamelCase and
      // refuses, client-side, a path that would not read back), known, immutable or unknown.
      if (field.message.typeName === "google.protobuf.FieldMask") {
        const path = fc.oneof(fc.constantFrom("*", "display_name", "username", "country", "birth_date", "email", "id"), fc.stringMatching(/^[a-z]{1,8}(_[a-z]{1,8}){0,2}$/));
        return fc.option(fc.record({ paths: fc.array(path, { maxLength: 3 }) }), { nil: undefined });
      }
      // A flat message of scalars (UpdateProfile's Profile), unset or
      // with every field set as a request's own.
      if (isFlat(field.message)) return fc.option(requestArbitrary(field.message), { nil: undefined });
      break;
  }
  throw new Error(`${field.parent.typeName}.${field.name}: extend the generator for ${field.fieldKind} fields`);
}

/** Whether every field of `desc` is a scalar, an enum or a list of scalars. */
function isFlat(desc: DescMessage): boolean {
  return desc.fields.every((f) => f.fieldKind === "scalar" || f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind === "scalar"));
}

/** A request init object with every field (and at most one member of each oneof) set. */
function requestArbitrary(desc: DescMessage): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      parts[member.localName] = fc.oneof(
        fc.constant({ case: undefined }),
        ...member.fields.map((f) => fieldArbitrary(f).map((value) => ({ case: f.localName, value }))),
      );
    } else {
      parts[member.localName] = fieldArbitrary(member);
    }
  }
  return fc.record(parts);
}

/** The proto names of the string fields whose value satisfies `bad` (a list item as name[i]). */
function stringFieldsWhere(desc: DescMessage, init: Record<string, unknown>, bad: (s: string) => boolean): string[] {
  const found: string[] = [];
  for (const field of desc.fields) {
    const raw = field.oneof ? (init[field.oneof.localName] as { case?: string; value?: unknown }) : { case: field.localName, value: init[field.localName] };
    if (raw.case !== field.localName) continue;
    if (typeof raw.value === "string" && bad(raw.value)) found.push(field.name);
    // A nested message's fields as `a.b` (as the refusal names them).
    if (field.fieldKind === "message" && raw.value !== undefined && !Array.isArray(raw.value)) {
      found.push(...stringFieldsWhere(field.message, raw.value as Record<string, unknown>, bad).map((name) => `${field.name}.${name}`));
    }
    if (Array.isArray(raw.value)) raw.value.forEach((v, i) => typeof v === "string" && bad(v) && found.push(`${field.name}[${i}]`));
  }
  return found;
}

const hasStrings = (desc: DescMessage): boolean =>
  desc.fields.some(
    (f) => ((f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) && f.scalar === ScalarType.STRING) || (f.fieldKind === "message" && isFlat(f.message) && hasStrings(f.message)),
  );

// ---------------------------------------------------------------------------------------------
// What every answer must satisfy.

function expectHandled(code: Code, what: string): void {
  expect(code === Code.Internal || code === Code.Unknown, `${what} answered ${Code[code]}`).toBe(false);
}

/**
 * The digest of the stored data as the last refusal left it: the next call starts from it
 * instead of taking a digest of its own (most calls are refusals; halves the queries).
 */
let current: Record<string, string> | undefined;

/** Refusals that record the failure by design: attempt counters, the audit of a wrong password. */
const RECORDED_FAILURES = new Set(["INVALID_CREDENTIALS", "WRONG_PASSWORD", "OTP_INVALID", "OTP_ATTEMPTS_EXHAUSTED", "MFA_CODE_INVALID", "REFRESH_TOKEN_REUSED"]);

/** Runs one call; when `storesNothing` says the answer is such a refusal, every table must be as it was. */
async function observed<T>(call: () => Promise<T>, storesNothing: (answer: T) => boolean): Promise<T> {
  const before = current ?? (await t.fingerprint());
  current = undefined;
  const answer = await call();
  if (storesNothing(answer)) {
    const after = await t.fingerprint();
    expect(after, `refused (${JSON.stringify(answer)}) but rows changed`).toEqual(before);
    current = after;
  }
  return answer;
}

/** The process lives and answers: /healthz, grpc.health.v1 and a password login over gRPC. */
async function expectAlive(): Promise<void> {
  current = undefined;
  expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
  const grpc = rawGrpc(t.grpcAddress);
  try {
    expect((await grpc.call("/grpc.health.v1.Health/Check", frame(new Uint8Array()), {})).code).toBe(OK);
  } finally {
    grpc.close();
  }
  const transport = createGrpcJsTransport(t.grpcAddress);
  try {
    const login = await createClient(AuthService, transport).login({ identifier: liveness().email, password: PASSWORD });
    expect(login.result.case).toBe("tokens");
  } finally {
    transport.close();
  }
}


const options = <T>(numRuns = RUNS): fc.Parameters<T> => ({ numRuns, seed: SEED });
const label = (m: DescMethod) => `${m.parent.name}.${m.name}`;

// ---------------------------------------------------------------------------------------------

it("every request message is flat but for Durations and flat messages (the generators above cover its field kinds)", () => {
  for (const method of METHODS) {
    for (const field of method.input.fields) {
      const nested = field.fieldKind === "message" && (field.message.typeName === "google.protobuf.Duration" || isFlat(field.message));
      expect(nested || field.fieldKind === "scalar" || field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "scalar"), `${label(method)}.${field.name}`).toBe(
        true,
      );
    }
  }
});

type ClientTransport = "grpc" | "connect-json" | "grpc-web";

describe.each<ClientTransport>(["grpc", "connect-json", "grpc-web"])("arbitrary strings in every string field, over %s", (name) => {
  // JSON: "\u0000" and "\ud800" travel as escapes; binary protobuf turns a lone surrogate into U+FFFD.
  const json = prepared(() => createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1", useBinaryFormat: false }));
  const transport = name === "connect-json" ? json : () => t.clients(name).transport;

  it.each(METHODS.filter((m) => hasStrings(m.input)).map((m) => [label(m), m] as const))("%s", async (_, method) => {
    const client = createClient(method.parent, transport()) as unknown as Record<string, (init: unknown, options: { headers: Record<string, string>; signal?: AbortSignal }) => Promise<unknown> | AsyncIterable<unknown>>;
    await fc.assert(
      fc.asyncProperty(requestArbitrary(method.input), fc.boolean(), async (init, authed) => {
        const { code, fields } = await observed(
          async () => {
            try {
              if (method.methodKind === "server_streaming") {
                // A stream answers its first message (or fails before it); then the client leaves.
                const abort = new AbortController();
                try {
                  for await (const _ of client[method.localName]!(init, { headers: headersFor(authed), signal: abort.signal }) as AsyncIterable<unknown>) break;
                } finally {
                  abort.abort();
                }
              } else {
                await client[method.localName]!(init, { headers: headersFor(authed) });
              }
              return { code: OK, reason: "", fields: [] as string[] };
            } catch (err) {
              const error = ConnectError.from(err);
              const reason = error.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
              const fields = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
              return { code: error.code, reason, fields };
            }
          },
          (answer) => answer.code !== OK && !RECORDED_FAILURES.has(answer.reason),
        );
        expectHandled(code, label(method));
        // Only JSON carries a lone surrogate to the server, whose JSON decoder refuses it (no field named yet).
        const surrogateSent = name === "connect-json" && stringFieldsWhere(method.input, init, (s) => !wellFormed(s)).length > 0;
        if (name !== "grpc" && internalMethods.has(method)) {
          // Not served by the gateway; its JSON decoder may refuse the body first.
          expect(code, "an internal RPC on the gateway").toBe(surrogateSent ? Code.InvalidArgument : Code.Unimplemented);
          return;
        }
        const withNul = stringFieldsWhere(method.input, init, (s) => s.includes("\u0000"));
        if (withNul.length > 0 || surrogateSent) expect(code, "unstorable text accepted").toBe(Code.InvalidArgument);
        if (withNul.length > 0 && !surrogateSent) expect(fields.sort()).toEqual(withNul.sort());
      }),
      options(),
    );
    await expectAlive();
  });
});

describe.each(["grpc", "connect", "grpc-web"] as const)("arbitrary bytes as the message body, over %s", (name) => {
  const grpc = prepared(() => (name === "grpc" ? rawGrpc(t.grpcAddress) : undefined), (client) => client?.close());

  /**
   * `json` picks Connect's JSON codec; `unframed` sends the bytes as the whole gRPC / gRPC-web
   * body, envelope (and its flags) included; `encoding` names a request compression, or none.
   */
  function send(method: DescMethod, body: Uint8Array, json: boolean, unframed: boolean, authed: boolean, encoding: string): Promise<RawAnswer> {
    const path = `/${method.parent.typeName}/${method.name}`;
    // A stream that is served stays open: a short deadline ends it (DEADLINE_EXCEEDED).
    const headers = method.methodKind === "server_streaming" ? { ...headersFor(authed), "grpc-timeout": "200m" } : headersFor(authed);
    const encoded = (name: string) => (encoding === "" ? headers : { ...headers, [name]: encoding });
    if (name === "grpc") return grpc()!.call(path, unframed ? body : frame(body), encoded("grpc-encoding"));
    if (name === "grpc-web") return rawGrpcWeb(t.httpUrl + path, unframed ? body : frame(body), encoded("grpc-encoding"));
    // A streaming method takes the streaming media types, its message in an envelope.
    if (method.methodKind === "server_streaming") return rawConnect(t.httpUrl + path, json ? "application/connect+json" : "application/connect+proto", unframed ? body : frame(body), encoded("connect-content-encoding"));
    return rawConnect(t.httpUrl + path, json ? "application/json" : "application/proto", body, encoded("content-encoding"));
  }

  it.each(METHODS.map((m) => [label(m), m] as const))("%s", async (_, method) => {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    // Noise, a valid encoding of a hostile request, that encoding cut short or with noise after
    // it, and (Connect) JSON text whose values are any JSON.
    const encoded = requestArbitrary(method.input).map((init) => toBinary(method.input, create(method.input, init)));
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      encoded,
      fc.tuple(encoded, fc.nat()).map(([bytes, cut]) => bytes.subarray(0, cut % (bytes.length + 1))),
      fc.tuple(encoded, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([bytes, tail]) => Buffer.concat([bytes, tail])),
      fc.dictionary(fc.constantFrom(...method.input.fields.map((f) => f.jsonName), "x"), fc.jsonValue({ maxDepth: 2 })).map((o) => utf8(JSON.stringify(o))),
      fc.string({ unit: "binary" }).map(utf8),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), fc.boolean(), fc.boolean(), fc.constantFrom("", "", "gzip", "br"), async (bytes, json, unframed, authed, encoding) => {
        // Without the ErrorInfo at hand: codes that no recorded failure uses.
        const answer = await observed(
          () => send(method, bytes, json, unframed, authed, encoding),
          ({ code }) => [Code.InvalidArgument, Code.Unimplemented, Code.NotFound, Code.FailedPrecondition].includes(code),
        );
        expectHandled(answer.code, `${label(method)} (HTTP ${answer.httpStatus})`);
      }),
      options(),
    );
    await expectAlive();
  });
});
