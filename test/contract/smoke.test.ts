import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { startTestService, TEST_SERVICE_KEY, type TestService } from "../support/service.js";
import { clientsFor, transportNames } from "../support/transports.js";

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.close();
});

describe.each(transportNames)("smoke over %s", (name) => {
  it("signs up, logs in and verifies", async () => {
    const clients = clientsFor(service, name);
    const auth = clients.client(AuthService);
    const email = `smoke-${name}@example.com`;
    const signUp = await auth.signUp({ email, password: "a long enough passphrase" });
    expect(signUp.user?.email).toBe(email);
    const login = await auth.login({ identifier: email, password: "a long enough passphrase" });
    expect(login.result.case).toBe("tokens");
    const grpc = clientsFor(service, "grpc");
    const verify = await grpc.client(TokenService).verifyToken(
      { token: login.result.case === "tokens" ? login.result.value.accessToken : "" },
      { headers: { "x-service-key": TEST_SERVICE_KEY } },
    );
    expect(verify.active).toBe(true);
    grpc.close();
    clients.close();
  });
});
