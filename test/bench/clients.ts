// The bench's view of the service: grpc-js clients (the test suite's transport wrapper), an
// account to log in with, and a checked VerifyToken call that fixes what h2load must get back.
import { randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { InactiveReason, TokenService, VerifyTokenResponseSchema } from "../../gen/identity/v1/token_service_pb.js";
import { createGrpcJsTransport } from "../support/transports.js";

export const BENCH_PASSWORD = "bench horse battery staple";
export const BENCH_SERVICE_KEY = "bench-service-key-0123456789abcdef0123456789";

export interface ServiceClients {
  readonly auth: Client<typeof AuthService>;
  readonly tokens: Client<typeof TokenService>;
  close(): void;
}

/** One grpc-js channel; create several for several concurrent clients. */
export function connect(grpcAddress: string): ServiceClients {
  const transport = createGrpcJsTransport(grpcAddress);
  return { auth: createClient(AuthService, transport), tokens: createClient(TokenService, transport), close: () => transport.close() };
}

export async function signUpAccount(clients: ServiceClients): Promise<string> {
  const email = `bench-${randomUUID().slice(0, 13)}@example.com`;
  await clients.auth.signUp({ email, password: BENCH_PASSWORD });
  return email;
}

export interface Session {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly sessionId: string;
}

export async function login(clients: ServiceClients, email: string): Promise<Session> {
  const response = await clients.auth.login({ identifier: email, password: BENCH_PASSWORD });
  if (response.result.case !== "tokens") throw new Error(`Login answered ${response.result.case ?? "nothing"}, not tokens`);
  const { accessToken, refreshToken } = response.result.value;
  const sid = JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()).sid as string;
  return { accessToken, refreshToken, sessionId: sid };
}

/** The same token with one signature character changed: well-formed, bad signature. */
export function withBadSignature(token: string): string {
  const dot = token.lastIndexOf(".");
  const i = dot + 10;
  return token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
}

/**
 * Calls VerifyToken once through grpc-js and fails unless the answer is as expected; returns
 * the encoded response, whose size every h2load response must match.
 */
export async function checkedVerify(clients: ServiceClients, token: string, expectActive: boolean): Promise<Uint8Array> {
  const response = await clients.tokens.verifyToken({ token }, { headers: { "x-service-key": BENCH_SERVICE_KEY } });
  if (response.active !== expectActive) {
    throw new Error(`VerifyToken answered active=${response.active} (${InactiveReason[response.reason]}), expected active=${expectActive}`);
  }
  if (!expectActive && response.reason !== InactiveReason.BAD_SIGNATURE) {
    throw new Error(`VerifyToken answered ${InactiveReason[response.reason]}, expected BAD_SIGNATURE`);
  }
  return toBinary(VerifyTokenResponseSchema, response);
}
