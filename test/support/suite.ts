// The set-up every contract test file repeats: one service for the file, and per transport the
// generated clients on it. Each helper registers its own beforeAll/afterAll and hands the objects
// over once they exist, so the tests keep using plain `service`, `auth`, `tokens` variables.
import { afterAll, beforeAll } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { createVerifier, type AuthClient, type TokenClient, type Verifier } from "./accounts.js";
import { startTestService, type TestService, type TestServiceOptions } from "./service.js";
import { clientsFor, type TransportName } from "./transports.js";

/** A service on port 0 for the whole file, with a grpc-js VerifyToken client on it. */
export function useService(ready: (service: TestService, verifier: Verifier) => void, options?: TestServiceOptions): void {
  let service: TestService | undefined;
  let verifier: Verifier | undefined;
  beforeAll(async () => {
    service = await startTestService(options);
    verifier = createVerifier(service);
    ready(service, verifier);
  });
  afterAll(async () => {
    verifier?.close();
    await service?.close();
  });
}

/** AuthService and TokenService clients over one transport, for one describe block. */
export function useClients(service: () => TestService, name: TransportName, ready: (auth: AuthClient, tokens: TokenClient) => void): void {
  let close = () => {};
  beforeAll(() => {
    const clients = clientsFor(service(), name);
    close = () => clients.close();
    ready(clients.client(AuthService), clients.client(TokenService));
  });
  afterAll(() => close());
}
