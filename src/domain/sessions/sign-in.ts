// How a first factor (password or one-time code) ends: with a session, or, for an account with
// a second factor, with an MFA challenge that MfaService.VerifyMfa turns into a session.
import type { Tx, UserRow } from "../../store/index.js";
import type { ClientMeta } from "../audit/audit.js";
import type { Challenge, Mfa } from "../mfa/mfa.js";
import type { SessionTokens, TokenPair } from "./session-tokens.js";

export type SignInResult =
  | { readonly kind: "tokens"; readonly tokens: TokenPair }
  | { readonly kind: "mfa"; readonly challenge: Challenge };

export interface SignIn {
  complete(tx: Tx, user: UserRow, firstFactor: readonly string[], client: ClientMeta): Promise<SignInResult>;
}

export function createSignIn(sessionTokens: SessionTokens, mfa: Pick<Mfa, "challengeFor">): SignIn {
  return {
    async complete(tx, user, firstFactor, client) {
      // Any second factor (TOTP, or a code to a verified address other than the first factor's)
      // means a challenge; MFA_METHOD_UNAVAILABLE when the only one left is the first factor itself.
      const challenge = await mfa.challengeFor(tx, user, firstFactor);
      if (challenge) return { kind: "mfa", challenge };
      return { kind: "tokens", tokens: await sessionTokens.start(tx, user, firstFactor, client) };
    },
  };
}
