// The app's connection to the gateway: generated clients over the transport the person picked
// (gRPC-web or Connect), and the session's access token. The access token lives only in this
// module's memory; the refresh token is an HttpOnly cookie the gateway sets, which this code
// never sees (fetch sends it along: the app is served from the gateway's own origin).
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import type { TokenPair } from "../../gen/identity/v1/common_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { PasskeyService } from "../../gen/identity/v1/passkey_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";

export type TransportName = "grpc-web" | "connect";

let accessToken: string | undefined;
let accessTokenExpiresAt: Date | undefined;

/** Adds the bearer token of the signed-in session to every call. */
export const bearer: Interceptor = (next) => (req) => {
  if (accessToken !== undefined) req.header.set("authorization", `Bearer ${accessToken}`);
  return next(req);
};

function transportFor(name: TransportName): Transport {
  const options = { baseUrl: window.location.origin, interceptors: [bearer] };
  return name === "connect" ? createConnectTransport(options) : createGrpcWebTransport(options);
}

export interface Api {
  readonly auth: Client<typeof AuthService>;
  readonly tokens: Client<typeof TokenService>;
  readonly otp: Client<typeof OtpService>;
  readonly mfa: Client<typeof MfaService>;
  /** Administration (admin.ts): the server admits administrators only. */
  readonly admin: Client<typeof AdminService>;
  /** Passkeys (passkeys.ts). */
  readonly passkeys: Client<typeof PasskeyService>;
}

let current: { name: TransportName; api: Api } | undefined;

export function useTransport(name: TransportName): void {
  const transport = transportFor(name);
  const client = <S extends DescService>(service: S) => createClient(service, transport);
  current = { name, api: { auth: client(AuthService), tokens: client(TokenService), otp: client(OtpService), mfa: client(MfaService), admin: client(AdminService), passkeys: client(PasskeyService) } };
}

export function transportName(): TransportName {
  return current?.name ?? "grpc-web";
}

export function api(): Api {
  if (!current) useTransport("grpc-web");
  return current!.api;
}

/** Keeps the access token of a sign-in or refresh; the refresh token is not in the message. */
export function holdTokens(tokens: TokenPair | undefined): void {
  accessToken = tokens?.accessToken || undefined;
  const expire = tokens?.accessTokenExpireTime;
  accessTokenExpiresAt = expire ? new Date(Number(expire.seconds) * 1000) : undefined;
}

export function forgetTokens(): void {
  accessToken = undefined;
  accessTokenExpiresAt = undefined;
}

export function currentAccessToken(): string | undefined {
  return accessToken;
}

export function accessTokenExpiry(): Date | undefined {
  return accessTokenExpiresAt;
}

let refreshing: Promise<TokenPair | undefined> | undefined;

/**
 * Trades the cookie's refresh token for a new pair (the gateway rotates the cookie). One refresh
 * at a time per page; when another tab spent the same cookie a moment earlier
 * (REFRESH_TOKEN_CONCURRENT), the browser holds that tab's new cookie by the time the retry
 * goes out, so the retry sends the newest token.
 */
export function refreshSession(): Promise<TokenPair | undefined> {
  refreshing ??= (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await api().tokens.refreshToken({});
        holdTokens(response.tokens);
        return response.tokens;
      } catch (err) {
        const error = ConnectError.from(err);
        if (attempt >= 3 || error.findDetails(ErrorInfoSchema)[0]?.reason !== "REFRESH_TOKEN_CONCURRENT") throw err;
        const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
        await new Promise((resolve) => setTimeout(resolve, delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : 200));
      }
    }
  })().finally(() => {
    refreshing = undefined;
  });
  return refreshing;
}

/** Refreshes first when the access token is about to expire, so calls do not fail for it. */
export async function ensureFreshToken(): Promise<void> {
  if (accessToken !== undefined && accessTokenExpiresAt !== undefined && accessTokenExpiresAt.getTime() - Date.now() < 15_000) {
    await refreshSession();
  }
}
