// FinishFederatedLogin as a browser calls it through the gateway: like Login, the refresh token
// leaves only as the HttpOnly cookie (never in the message), and RefreshToken takes it from there.
import { createClient, type CallOptions } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { FederationService } from "../../gen/identity/v1/federation_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { authorize, providerAccount, setupFederation } from "./support.js";

const ALLOWED = "http://allowed.example"; // the test service's CORS_ORIGINS
const COOKIE = /^identity-refresh=([\w-]{43}); Path=\/; HttpOnly; Secure; SameSite=Strict; Max-Age=\d+$/;

const { t, op } = setupFederation();

describe.each(["connect", "grpc-web"] as const)("a browser's federated sign-in over %s", (protocol) => {
  const transport = () =>
    protocol === "connect" ? createConnectTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" }) : createGrpcWebTransport({ baseUrl: t.httpUrl, httpVersion: "1.1" });

  it("gets the refresh token as the cookie only, and refreshes with it", async () => {
    const federation = createClient(FederationService, transport());
    const person = providerAccount(op(), `browser-${protocol}`);
    const callback = await authorize(federation, op(), person.login);
    let setCookie: string | null = null;
    const options: CallOptions = { headers: { origin: ALLOWED }, onHeader: (h) => (setCookie = h.get("set-cookie")) };
    const finished = await federation.finishFederatedLogin(callback, options);
    const tokens = finished.login!.result.value as { accessToken: string; refreshToken: string };
    expect(tokens.accessToken).not.toBe("");
    expect(tokens.refreshToken).toBe("");
    const cookie = COOKIE.exec(setCookie ?? "")?.[1];
    expect(cookie, `Set-Cookie "${setCookie}"`).toBeTruthy();
    const refreshed = await createClient(TokenService, transport()).refreshToken({}, { headers: { origin: ALLOWED, cookie: `identity-refresh=${cookie}` } });
    expect(refreshed.tokens?.accessToken).toBeTruthy();
  });
});
