// The call policy's string check, without a server: which strings it refuses, and how it names
// the fields of nested, repeated, map, oneof and recursive message types.
import { create } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ListActivityResponseSchema, LoginResponseSchema, SignUpRequestSchema, WhoAmIRequestSchema } from "../../gen/identity/v1/auth_service_pb.js";
import { VerifyMfaRequestSchema } from "../../gen/identity/v1/mfa_service_pb.js";
import { GetJwksRequestSchema, VerifyTokenRequestSchema } from "../../gen/identity/v1/token_service_pb.js";
import { compileStringCheck, isStorableText } from "../../src/services/request-strings.js";
import { wellFormed } from "../support/text.js";


const fields = (violations: ReadonlyArray<{ field: string }> | undefined) => violations?.map((v) => v.field);

describe("isStorableText", () => {
  it.each([
    ["", true],
    ["plain ascii", true],
    ["Zoë 😀 中文", true],
    ["\ud83d\ude00", true],
    ["\u0000", false],
    ["a\u0000b", false],
    ["\ud800", false],
    ["x\ud800y", false],
    ["\udc00", false],
    ["\ude00\ud83d", false],
    ["\ud83d\ud83d\ude00", false],
  ])("%j is storable: %s", (text, storable) => {
    expect(isStorableText(text)).toBe(storable);
  });

  it("agrees with 'well-formed and no U+0000' on arbitrary UTF-16", () => {
    const text = fc.oneof(fc.string({ unit: "binary" }), fc.string({ unit: fc.constantFrom("\u0000", "\ud800", "\udc00", "a", "\ud83d", "\ude00") }));
    fc.assert(
      fc.property(text, (s) => isStorableText(s) === (wellFormed(s) && !s.includes("\u0000"))),
      { numRuns: 2_000, seed: 1006 },
    );
  });
});

describe("compileStringCheck", () => {
  it("is undefined for a request without strings (nothing to pay per call)", () => {
    expect(compileStringCheck(GetJwksRequestSchema)).toBeUndefined();
    expect(compileStringCheck(WhoAmIRequestSchema)).toBeUndefined();
  });

  it("names every bad field by its proto name, and passes good ones", () => {
    const check = compileStringCheck(SignUpRequestSchema)!;
    expect(check(create(SignUpRequestSchema, { email: "a@example.com", displayName: "Ann 😀" }))).toBeUndefined();
    expect(fields(check(create(SignUpRequestSchema, { email: "a\u0000", displayName: "\ud800", password: "ok" })))).toEqual(["email", "display_name"]);
    expect(check(create(SignUpRequestSchema, { username: "\udc00" }))).toEqual([
      { field: "username", reason: "INVALID_CHARACTERS", description: "contains characters that are not allowed" },
    ]);
  });

  it("checks the hot path's single field", () => {
    const check = compileStringCheck(VerifyTokenRequestSchema)!;
    expect(check(create(VerifyTokenRequestSchema, { token: "eyJ.a.b" }))).toBeUndefined();
    expect(fields(check(create(VerifyTokenRequestSchema, { token: "eyJ\u0000" })))).toEqual(["token"]);
  });

  it("checks the selected member of a oneof", () => {
    const check = compileStringCheck(VerifyMfaRequestSchema)!;
    expect(fields(check(create(VerifyMfaRequestSchema, { code: { case: "totpCode", value: "12\u00003456" } })))).toEqual(["totp_code"]);
    expect(fields(check(create(VerifyMfaRequestSchema, { challengeToken: "\ud800", code: { case: "backupCode", value: "\u0000" } })))).toEqual([
      "challenge_token",
      "backup_code",
    ]);
    expect(check(create(VerifyMfaRequestSchema, { code: { case: "backupCode", value: "abcd-efgh" } }))).toBeUndefined();
  });

  it("follows nested, repeated and map fields, naming them a.b and a[i].b", () => {
    const login = compileStringCheck(LoginResponseSchema)!;
    expect(fields(login(create(LoginResponseSchema, { result: { case: "tokens", value: { accessToken: "\u0000" } }, user: { displayName: "\ud800" } })))).toEqual([
      "tokens.access_token",
      "user.display_name",
    ]);
    const activity = compileStringCheck(ListActivityResponseSchema)!;
    const response = create(ListActivityResponseSchema, {
      events: [{ ipAddress: "127.0.0.1" }, { userAgent: "\u0000", details: { ok: "\ud800" } }, { details: { "\u0000": "v" } }],
      nextPageToken: "ok",
    });
    expect(fields(activity(response))).toEqual(["events[1].user_agent", "events[1].details", "events[2].details"]);
  });

  it("handles a recursive message type (google.protobuf.Struct) without looping", () => {
    const check = compileStringCheck(StructSchema)!;
    const value = create(StructSchema, {
      fields: {
        good: { kind: { case: "stringValue", value: "fine" } },
        deep: {
          kind: {
            case: "listValue",
            value: { values: [{ kind: { case: "structValue", value: { fields: { x: { kind: { case: "stringValue", value: "\u0000" } } } } } }] },
          },
        },
      },
    });
    expect(fields(check(value))).toEqual(["fields.list_value.values[0].struct_value.fields.string_value"]);
  });
});
