// Signing in with a passkey alone: a discoverable credential (the authenticator offers the
// account's passkeys; no identifier is typed) with user verification. The session's `amr` is
// ["hwk", "user", "mfa"] (RFC 8176): proof of possession of the authenticator's key, and the
// authenticator's verification of the person (PIN or biometric, WebAuthn "uv"); the two are two
// factors, so `mfa` is there too and the sign-in asks for no second factor, and whatever checks
// `mfa` (VerifyToken's require_amr, administrators' step-up) accepts it. "hwk" although a synced
// passkey's key is not bound to one device: RFC 8176 has no better code ("swk" claims less than
// the authenticator's protection, "pop" says nothing of it); backed_up records which it is.
//
// Limits: failed sign-ins take a slot of a per-client-address rule, as Login's failures do
// (login-limits.ts), and Start is capped per address, since it stores a challenge for anyone.
import { generateAuthenticationOptions, verifyAuthenticationResponse, type AuthenticationResponseJSON, type AuthenticatorTransportFuture } from "@simplewebauthn/server";
import type { LoginLimitConfig } from "../../config.js";
import type { Store, UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import { AppError } from "../errors.js";
import { clientAddressKey, type RateLimits, type RateRule } from "../limits/rate-limits.js";
import type { SessionTokens, TokenPair } from "../sessions/session-tokens.js";
import { parseFinish, userHandle, verified, type WebAuthnSettings } from "./ceremony.js";
import type { CeremonyStart } from "./passkeys.js";

/** The session of a passkey sign-in: possession of the key, the person verified by the authenticator, two factors. */
export const PASSKEY_AMR = ["hwk", "user", "mfa"] as const;

/** Passkey sign-in starts per client address and minute: each stores a challenge until it expires. */
export const MAX_PASSKEY_LOGIN_STARTS_PER_IP_PER_MINUTE = 60;

export interface PasskeyLogin {
  start(client: ClientMeta): Promise<CeremonyStart>;
  finish(challengeId: string, responseJson: string, client: ClientMeta): Promise<{ user: UserRow; tokens: TokenPair }>;
}

export interface PasskeyLoginDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "passkeys" | "webauthnChallenges">;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly limits: RateLimits;
  readonly sessionTokens: SessionTokens;
  readonly settings: WebAuthnSettings;
  readonly loginLimits: LoginLimitConfig;
}

/** Why a sign-in with a known passkey was refused, as PASSKEY_LOGIN_FAILED's `cause` says. */
const CAUSES: Partial<Record<AppError["reason"], string>> = {
  WEBAUTHN_VERIFICATION_FAILED: "verification_failed",
  PASSKEY_COUNTER_REGRESSED: "counter_regressed",
  ACCOUNT_DISABLED: "account_disabled",
  ACCOUNT_DELETED: "account_deleted",
  WEBAUTHN_CHALLENGE_INVALID: "challenge_invalid",
  PASSKEY_UNKNOWN: "unknown_credential",
};

export function createPasskeyLogin({ db, clock, audit, limits, sessionTokens, settings, loginLimits }: PasskeyLoginDeps): PasskeyLogin {
  const failureRule = (client: ClientMeta): RateRule => ({ key: `passkey-fail:ip:${clientAddressKey(client.ip)}`, limit: loginLimits.maxFailuresPerIpPerHour, windowMs: 3_600_000 });

  return {
    async start(client) {
      await limits.take([{ key: `passkey-start:ip:${clientAddressKey(client.ip)}`, limit: MAX_PASSKEY_LOGIN_STARTS_PER_IP_PER_MINUTE, windowMs: 60_000 }]);
      // No allowCredentials: the authenticator offers the discoverable credentials it holds for the RP ID.
      const options = await generateAuthenticationOptions({ rpID: settings.rpId, userVerification: "required", timeout: settings.challengeTtlSec * 1000 });
      const now = clock.now();
      const challengeId = await db.webauthnChallenges.insert(db.direct, {
        challenge: options.challenge,
        purpose: "login",
        userId: null,
        sessionId: null,
        expiresAt: new Date(now.getTime() + settings.challengeTtlSec * 1000),
      }, now);
      return { optionsJson: JSON.stringify(options), challengeId };
    },

    async finish(challengeId, responseJson, client) {
      const response = parseFinish<AuthenticationResponseJSON>(challengeId, responseJson);
      // A slot first, given back on success (credential-checks.ts does the same for passwords).
      const reservation = await limits.take([failureRule(client)]);
      let owner: string | null = null;
      let passkeyId: string | undefined;
      try {
        // The challenge is spent first, in a statement of its own: a refused response (a wrong
        // origin, a bad signature, a counter gone back) does not leave it for another attempt.
        const challenge = await db.webauthnChallenges.consume(db.direct, challengeId.toLowerCase(), "login", { userId: null, sessionId: null }, clock.now());
        if (challenge === undefined) throw new AppError("WEBAUTHN_CHALLENGE_INVALID", `sign-in challenge ${challengeId} unknown, used or expired`);
        // One transaction for the rest: a refusal rolls back the counter with it, so it stores
        // nothing but the spent challenge, its audit row and its rate-limit slot.
        const signedIn = await db.transaction(async (tx) => {
          const now = clock.now();
          const passkey = await db.passkeys.findByCredentialId(tx, response.id);
          if (!passkey) throw new AppError("PASSKEY_UNKNOWN", `no passkey has credential ${response.id}`);
          owner = passkey.userId;
          passkeyId = passkey.id;
          const { authenticationInfo: info } = await verified(`sign-in with passkey ${passkey.id}`, () =>
            verifyAuthenticationResponse({
              response,
              expectedChallenge: challenge,
              expectedOrigin: [...settings.origins],
              expectedRPID: settings.rpId,
              requireUserVerification: true,
              // The counter rule is the store's one conditional statement (recordUse), so the
              // library is shown 0 and never refuses on the counter itself.
              credential: { id: passkey.credentialId, publicKey: new Uint8Array(passkey.publicKey), counter: 0, transports: passkey.transports as AuthenticatorTransportFuture[] },
            }),
          );
          // A discoverable credential returns the account's user handle: it must be the owner's.
          const handle = response.response.userHandle;
          if (handle !== undefined && Buffer.from(handle, "base64url").compare(Buffer.from(userHandle(passkey.userId))) !== 0) {
            throw new AppError("WEBAUTHN_VERIFICATION_FAILED", `user handle of passkey ${passkey.id} is not its owner's`);
          }
          // Said only after the signature checked out, as Login says it only after the right password.
          const user = await db.users.get(tx, passkey.userId);
          if (user.deletedAt !== null || user.status === "deleted") throw new AppError("ACCOUNT_DELETED", `passkey ${passkey.id} of deleted account ${user.id}`);
          if (!db.users.isLive(user)) throw new AppError("ACCOUNT_DISABLED", `passkey ${passkey.id} of disabled account ${user.id}`);
          if (!(await db.passkeys.recordUse(tx, passkey.id, info.newCounter, info.credentialBackedUp, now))) {
            throw new AppError("PASSKEY_COUNTER_REGRESSED", `passkey ${passkey.id} reported counter ${info.newCounter}, not above the stored ${passkey.signCount}: a cloned authenticator?`);
          }
          const tokens = await sessionTokens.start(tx, user, PASSKEY_AMR, client);
          await audit.record({ userId: user.id, type: "PASSKEY_LOGIN", client, sessionId: tokens.sessionId, details: { passkey_id: passkey.id } }, tx);
          return { user, tokens };
        });
        await limits.refund(reservation);
        return signedIn;
      } catch (err) {
        if (!(err instanceof AppError)) {
          // Not a refused sign-in (the database is gone): no guess was made.
          await limits.refund(reservation);
          throw err;
        }
        const details: Record<string, string> = { cause: CAUSES[err.reason] ?? err.reason.toLowerCase() };
        if (passkeyId !== undefined) details.passkey_id = passkeyId;
        await audit.record({ userId: owner, type: "PASSKEY_LOGIN_FAILED", client, details });
        throw err;
      }
    },
  };
}
