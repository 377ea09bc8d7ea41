// Issue 10, item 6: input the database cannot take used to come back as INTERNAL. U+0000 in a
// string field (PostgreSQL text cannot hold it) and unpaired surrogates (Connect JSON can carry
// them) are refused with INVALID_ARGUMENT naming the field before any handler runs; page tokens
// that decode to a malformed id or a time PostgreSQL rejects are refused as page_token. Every
// refusal leaves the stored data as it was.
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { fromBinary, type DescService } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { bearer, signUp, uniqueEmail, PASSWORD } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { setupService } from "../support/setup.js";
import { type TransportName } from "../support/transports.js";

const t = setupService({ env: { ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } });

/** Connect is driven as JSON here: that is where "\u0000" and "\ud800" arrive as escapes. */
type Transport = Exclude<TransportName, "connect"> | "connect-json";
const transports: Transport[] = ["grpc", "connect-json", "grpc-web"];

function clientOf<S extends DescService>(name: Transport, desc: S): { client: Client<S>; close(): void } {
  if (name === "connect-json") {
    const transport = createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1", useBinaryFormat: false });
    return { client: createClient(desc, transport), close: () => {} };
  }
  return { client: t.clients(name).client(desc), close: () => {} };
}

async function withClient<S extends DescService, T>(name: Transport, desc: S, use: (client: Client<S>) => Promise<T>): Promise<T> {
  const { client, close } = clientOf(name, desc);
  try {
    return await use(client);
  } finally {
    close();
  }
}

/** The call is refused as INVALID_ARGUMENT naming exactly `fields`, and nothing is stored or sent. */
async function expectRefused(fields: string[], call: () => Promise<unknown>): Promise<void> {
  await t.expectNothingStored(() => expectError(call(), { code: Code.InvalidArgument, reason: "INVALID_ARGUMENT", fields }));
}

function pageToken(time: string, id: string): string {
  return Buffer.from(JSON.stringify([time, id])).toString("base64url");
}

describe.each(transports)("U+0000 in string fields over %s", (name) => {
  it("SignUp: email and display_name", async () => {
    await withClient(name, AuthService, async (auth) => {
      await expectRefused(["email"], () => auth.signUp({ email: `nul\u0000${uniqueEmail("x")}`, password: PASSWORD }));
      await expectRefused(["display_name"], () => auth.signUp({ email: uniqueEmail("nul"), password: PASSWORD, displayName: "Ann\u0000" }));
      await expectRefused(["username", "display_name"], () =>
        auth.signUp({ email: uniqueEmail("nul"), username: "\u0000", password: PASSWORD, displayName: "\u0000" }),
      );
    });
  });

  it("Login: identifier", async () => {
    await withClient(name, AuthService, async (auth) => {
      const account = await signUp(auth, "nul-login");
      await expectRefused(["identifier"], () => auth.login({ identifier: `${account.email}\u0000`, password: PASSWORD }));
    });
  });

  it("SendOtp and RequestPasswordReset: destination", async () => {
    await withClient(name, OtpService, async (otp) => {
      await expectRefused(["destination"], () =>
        otp.sendOtp({ channel: OtpChannel.EMAIL, purpose: OtpPurpose.LOGIN, destination: `a\u0000${uniqueEmail("otp")}` }),
      );
    });
    await withClient(name, AuthService, async (auth) => {
      await expectRefused(["destination"], () => auth.requestPasswordReset({ channel: OtpChannel.EMAIL, destination: `\u0000${uniqueEmail("reset")}` }));
    });
  });

  it("an authenticated RPC: the request check runs before anything else", async () => {
    await withClient(name, AuthService, async (auth) => {
      const account = await signUp(auth, "nul-change");
      await expectRefused(["new_password"], () =>
        auth.changePassword({ currentPassword: PASSWORD, newPassword: `${PASSWORD}\u0000` }, bearer(account.tokens.accessToken)),
      );
    });
  });
});

describe.each(transports)("page tokens that this service could not have produced, over %s", (name) => {
  const bad = {
    "an id that is not a UUID": pageToken("2026-01-01T00:00:00.000Z", "-".repeat(36)),
    "a UUID with its dashes moved": pageToken("2026-01-01T00:00:00.000Z", "0123456789abcdef-0123-4567-89ab-cdef"),
    "a time in the year 275000": pageToken("+275000-01-01T00:00:00.000Z", "01234567-89ab-cdef-0123-456789abcdef"),
    "a time before 1970": pageToken("-000001-01-01T00:00:00.000Z", "01234567-89ab-cdef-0123-456789abcdef"),
    "a time spelled otherwise": pageToken("2026-01-01", "01234567-89ab-cdef-0123-456789abcdef"),
  };

  it.each(Object.entries(bad))("ListSessions and ListActivity refuse %s", async (_, token) => {
    await withClient(name, AuthService, async (auth) => {
      const account = await signUp(auth, "page");
      const headers = bearer(account.tokens.accessToken);
      await expectRefused(["page_token"], () => auth.listSessions({ pageToken: token }, headers));
      await expectRefused(["page_token"], () => auth.listActivity({ pageToken: token }, headers));
    });
  });

  it("a token from a previous response still pages", async () => {
    await withClient(name, AuthService, async (auth) => {
      const account = await signUp(auth, "page-ok");
      await auth.login({ identifier: account.email, password: PASSWORD });
      const headers = bearer(account.tokens.accessToken);
      const first = await auth.listSessions({ pageSize: 1 }, headers);
      expect(first.nextPageToken).not.toBe("");
      const second = await auth.listSessions({ pageSize: 1, pageToken: first.nextPageToken }, headers);
      expect(second.sessions).toHaveLength(1);
      expect(second.sessions[0]!.id).not.toBe(first.sessions[0]!.id);
      const activity = await auth.listActivity({ pageSize: 1 }, headers);
      expect((await auth.listActivity({ pageSize: 1, pageToken: activity.nextPageToken }, headers)).events).toHaveLength(1);
    });
  });
});

describe("unpaired surrogates over Connect JSON", () => {
  // Binary protobuf cannot carry them at all; the JSON codec refuses them as invalid UTF-8
  // before the call policy sees the request (its ErrorInfo comes with the gateway's decode-error
  // fix), and the policy's own check is covered by test/security/request-strings.spec.test.ts.
  it("are refused as INVALID_ARGUMENT, nothing stored as U+FFFD", async () => {
    await withClient("connect-json", AuthService, async (auth) => {
      for (const displayName of ["Ann \ud800", "\udc00 Ann"]) {
        await t.expectNothingStored(() =>
          expectError(auth.signUp({ email: uniqueEmail("sur"), password: PASSWORD, displayName }), { code: Code.InvalidArgument }),
        );
      }
      await t.expectNothingStored(() =>
        expectError(auth.login({ identifier: uniqueEmail("sur"), password: "\ud83d" }), { code: Code.InvalidArgument }),
      );
    });
  });

  it("a well-formed pair (an emoji) is text and goes through", async () => {
    await withClient("connect-json", AuthService, async (auth) => {
      const response = await auth.signUp({ email: uniqueEmail("emoji"), password: PASSWORD, displayName: "Ann \ud83d\ude00" });
      expect(response.user?.displayName).toBe("Ann 😀");
    });
  });
});

describe("the literal JSON escape in a hand-written Connect request", () => {
  it('"\\u0000" in identifier is INVALID_ARGUMENT naming identifier', async () => {
    const body = `{"identifier":"someone\\u0000@example.com","password":"${PASSWORD}"}`;
    expect(body).toContain("\\u0000");
    await t.expectNothingStored(async () => {
      const response = await fetch(`${t.httpUrl}/identity.v1.AuthService/Login`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      expect(response.status).toBe(400);
      const error = (await response.json()) as { code: string; details?: Array<{ type: string; value: string }> };
      expect(error.code).toBe("invalid_argument");
      const badRequest = error.details?.find((d) => d.type === "google.rpc.BadRequest");
      const violations = fromBinary(BadRequestSchema, Buffer.from(badRequest?.value ?? "", "base64")).fieldViolations;
      expect(violations.map((v) => v.field)).toEqual(["identifier"]);
      expect(JSON.stringify(error)).not.toContain("someone");
    });
  });
});
