// TokenService.VerifyToken is internal: not served by the gateway; on the gRPC port it needs
// a service key, except from loopback in development mode.
import { Code } from "@connectrpc/connect";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { InactiveReason, SubjectKind, TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { uniqueUsername } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { setupService } from "../support/setup.js";
import { TEST_KEK, TEST_SERVICE_KEY } from "../support/service.js";
import { type TransportName } from "../support/transports.js";

const WITH_KEY = { headers: { "x-service-key": TEST_SERVICE_KEY } };
const WRONG_KEY = { headers: { "x-service-key": "not-the-service-key-0123456789abcdef" } };

const t = setupService();
const account = t.prepare(() => t.signUp("verify", { username: uniqueUsername("verify") }));

describe.each<TransportName>(["connect", "grpc-web"])("VerifyToken on the gateway over %s", (name) => {
  it("answers UNIMPLEMENTED, with or without a service key", async () => {
    const { tokens } = t.clients(name);
    const { accessToken } = account().tokens;
    await t.expectUnchanged(async () => {
      await expectError(tokens.verifyToken({ token: accessToken }, WITH_KEY), { code: Code.Unimplemented });
      await expectError(tokens.verifyToken({ token: accessToken }), { code: Code.Unimplemented });
    });
  });
});

describe("VerifyToken over grpc in development mode", () => {
  const { tokens } = t.clients("grpc");
  const accessToken = () => account().tokens.accessToken;

  it("returns the token's claims to a caller with a service key", async () => {
    const claims = decodeJwt(accessToken());
    const response = await tokens.verifyToken({ token: accessToken() }, WITH_KEY);
    expect(response).toMatchObject({
      active: true,
      reason: InactiveReason.UNSPECIFIED,
      subjectKind: SubjectKind.USER,
      serviceName: "",
      scope: [],
      userId: claims.sub,
      sessionId: claims.sid,
      tokenId: claims.jti,
      role: "user",
      username: claims.username,
      amr: ["pwd"],
      issuer: t.config.issuer,
      audience: t.config.audience,
    });
    expect(response.username).not.toBe("");
    expect(Number(response.issueTime?.seconds)).toBe(claims.iat);
    expect(Number(response.expireTime?.seconds)).toBe(claims.exp);
  });

  it("lets a loopback caller without a key in", async () => {
    expect((await tokens.verifyToken({ token: accessToken() })).active).toBe(true);
  });

  it("refuses a wrong key with UNAUTHENTICATED, even from loopback", async () => {
    await t.expectUnchanged(() =>
      expectError(tokens.verifyToken({ token: accessToken() }, WRONG_KEY), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" }),
    );
  });

  it("answers active=false with a reason for a bad token, INVALID_ARGUMENT for none", async () => {
    const [header, payload] = accessToken().split(".");
    await t.expectUnchanged(async () => {
      expect(await tokens.verifyToken({ token: "garbage" }, WITH_KEY)).toMatchObject({ active: false, reason: InactiveReason.MALFORMED, userId: "" });
      expect((await tokens.verifyToken({ token: account().tokens.refreshToken }, WITH_KEY)).reason).toBe(InactiveReason.MALFORMED);
      expect((await tokens.verifyToken({ token: `${header}.${payload}.AAAA` }, WITH_KEY)).reason).toBe(InactiveReason.BAD_SIGNATURE);
      await expectError(tokens.verifyToken({ token: "" }, WITH_KEY), { code: Code.InvalidArgument, fields: ["token"] });
    });
  });
});

describe("VerifyToken over grpc in production mode", () => {
  const production = setupService({ env: { NODE_ENV: "production", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), PUBLIC_URL: "https://id.example.com" } });
  const { tokens } = production.clients("grpc");
  const productionToken = production.prepare(async () => {
    expect(production.config.production).toBe(true);
    return (await production.signUp("verify-prod")).tokens.accessToken;
  });

  it("requires a service key even from loopback", async () => {
    await production.expectUnchanged(async () => {
      await expectError(tokens.verifyToken({ token: productionToken() }), { code: Code.Unauthenticated, reason: "SERVICE_KEY_REQUIRED" });
      await expectError(tokens.verifyToken({ token: productionToken() }, { headers: { "x-service-key": "" } }), {
        code: Code.Unauthenticated,
        reason: "SERVICE_KEY_REQUIRED",
      });
      await expectError(tokens.verifyToken({ token: productionToken() }, WRONG_KEY), { code: Code.Unauthenticated, reason: "SERVICE_KEY_INVALID" });
    });
  });

  it("verifies for a caller with the key", async () => {
    expect((await tokens.verifyToken({ token: productionToken() }, WITH_KEY)).active).toBe(true);
  });
});
