// Administrators for the AdminService suites: a person holding a role (set in the database, as
// the bootstrap CLI would) with TOTP enrolled, signed in with the second factor (a fresh step-up),
// and service accounts holding users.read / users.manage.
import { createClient, type Client } from "@connectrpc/connect";
import { generateSync } from "otplib";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import type { TokenPair } from "../../gen/identity/v1/common_pb.js";
import type { ManualClock } from "../../src/domain/clock.js";
import { bearer, PASSWORD, signUp, uniqueEmail } from "../support/accounts.js";
import type { TestContext } from "../support/setup.js";
import type { TransportName } from "../support/transports.js";

export interface Person {
  readonly email: string;
  readonly userId: string;
  /** An access token from a password sign-in (no second factor). */
  readonly passwordToken: string;
  /** TOTP secret; undefined when the person has no second factor. */
  readonly secret?: string;
}

export function adminClient(t: TestContext, via: TransportName): Client<typeof AdminService> {
  return createClient(AdminService, t.clients(via).transport);
}

/** A person holding `role`, with TOTP enrolled when `withTotp` (the default). */
export async function person(t: TestContext, clock: ManualClock, tag: string, role: string, withTotp = true): Promise<Person> {
  const { auth, mfa } = t.clients("grpc");
  const account = await signUp(auth, tag, { email: uniqueEmail(tag) });
  await t.db.query(`UPDATE users SET role = $2 WHERE id = $1`, [account.userId, role]);
  if (!withTotp) return { email: account.email, userId: account.userId, passwordToken: account.tokens.accessToken };
  const setup = await mfa.setupTotp({}, bearer(account.tokens.accessToken));
  clock.advance(30_000);
  await mfa.confirmTotp({ code: totpCode(clock, setup.secret) }, bearer(account.tokens.accessToken));
  return { email: account.email, userId: account.userId, passwordToken: account.tokens.accessToken, secret: setup.secret };
}

export function totpCode(clock: ManualClock, secret: string): string {
  return generateSync({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
}

/** Signs `p` in with password and TOTP: an access token proving a second factor now. */
export async function stepUp(t: TestContext, clock: ManualClock, p: Person): Promise<string> {
  return (await stepUpTokens(t, clock, p)).accessToken;
}

/** stepUp's whole token pair (its refresh token keeps the session's auth_time). */
export async function stepUpTokens(t: TestContext, clock: ManualClock, p: Person): Promise<TokenPair> {
  const { auth, mfa } = t.clients("grpc");
  const login = await auth.login({ identifier: p.email, password: PASSWORD });
  if (login.result.case !== "mfaChallenge") throw new Error("expected an MFA challenge");
  clock.advance(30_000);
  const done = await mfa.verifyMfa({ challengeToken: login.result.value.challengeToken, code: { case: "totpCode", value: totpCode(clock, p.secret!) } });
  return done.tokens!;
}

export { bearer };
