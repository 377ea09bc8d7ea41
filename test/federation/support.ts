// The federation suites' set-up: a real OpenID Provider (test/support/oidc-provider.ts) and the
// service configured with it, and the whole redirect flow at the RPC level.
import { afterAll, expect } from "vitest";
import type { Client } from "@connectrpc/connect";
import { FederationService, type FinishFederatedLoginResponse } from "../../gen/identity/v1/federation_service_pb.js";
import type { Clock } from "../../src/domain/clock.js";
import { startTestOidcProvider, type TestOidcProvider } from "../support/oidc-provider.js";
import { setupService, type TestContext } from "../support/setup.js";

/** The redirect URI the tests' client uses (OIDC_REDIRECT_URIS); nothing listens there. */
export const REDIRECT_URI = "http://app.test/callback";

export type FederationClient = Client<typeof FederationService>;

export interface FederationContext {
  readonly t: TestContext;
  /** The running provider (inside tests and hooks). */
  op(): TestOidcProvider;
}

/**
 * The service with two providers at the same test OP: `test` (the one tests sign in with) and
 * `flaky` (its own discovery cache, for the provider-down case).
 */
export function setupFederation(options: { clock?: Clock; env?: Record<string, string> } = {}): FederationContext {
  let op: TestOidcProvider | undefined;
  const t = setupService(async () => {
    op = await startTestOidcProvider({ redirectUris: [REDIRECT_URI] });
    return {
      clock: options.clock,
      env: {
        OIDC_PROVIDERS: JSON.stringify([op.providerConfig("test", "Test provider"), op.providerConfig("flaky", "Flaky provider")]),
        OIDC_REDIRECT_URIS: REDIRECT_URI,
        ...options.env,
      },
    };
  });
  afterAll(async () => {
    await op?.close();
  });
  return {
    t,
    op: () => {
      if (!op) throw new Error("the provider is not running");
      return op;
    },
  };
}

/** The parameters the provider sent back, as the browser app reads them off its URL. */
export function callbackParams(callback: URL): { state: string; code: string; iss: string } {
  return { state: callback.searchParams.get("state") ?? "", code: callback.searchParams.get("code") ?? "", iss: callback.searchParams.get("iss") ?? "" };
}

/** Starts a sign-in, signs in at the provider as `login`, and answers the callback's parameters. */
export async function authorize(federation: FederationClient, op: TestOidcProvider, login: string, rewrite?: (url: URL) => void) {
  const started = await federation.startFederatedLogin({ provider: "test", redirectUri: REDIRECT_URI });
  const url = new URL(started.authorizationUrl);
  rewrite?.(url);
  const callback = await op.signIn(url.href, login);
  expect(callback.searchParams.get("state")).toBe(started.state);
  return callbackParams(callback);
}

/** The whole flow: start, sign in at the provider, finish. */
export async function federatedSignIn(federation: FederationClient, op: TestOidcProvider, login: string): Promise<FinishFederatedLoginResponse> {
  return federation.finishFederatedLogin(await authorize(federation, op, login));
}

let accounts = 0;
/** A provider account with a unique login and address. */
export function providerAccount(op: TestOidcProvider, tag: string, claims: { email?: string; email_verified?: boolean; name?: string } = {}) {
  accounts += 1;
  const login = `${tag}-${accounts}-${process.pid}`;
  const email = claims.email ?? `${login}@provider.example`;
  op.addAccount(login, { email, email_verified: true, name: `Person ${tag}`, ...claims });
  return { login, email };
}
