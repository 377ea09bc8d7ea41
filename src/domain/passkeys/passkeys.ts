// A signed-in person's passkeys: registering one (after a recent sign-in, as ChangeEmail asks),
// listing, renaming and removing them. Signing in with one is passkey-login.ts.
//
// Registration asks for a discoverable credential (residentKey "required") with user
// verification, so the passkey alone signs in later (no identifier typed). Attestation is "none":
// the service trusts the account holder's choice of authenticator and keeps no attestation.
import { generateRegistrationOptions, verifyRegistrationResponse, type AuthenticatorTransportFuture, type RegistrationResponseJSON } from "@simplewebauthn/server";
import { UniqueViolationError, type PasskeyRow, type Store } from "../../store/index.js";
import { requireLiveUser } from "../accounts/live-user.js";
import { requireRecentAuthentication } from "../accounts/reauthentication.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { AppError, Violations } from "../errors.js";
import { isUuid, parseFinish, userHandle, verified, type WebAuthnSettings } from "./ceremony.js";

export type { PasskeyRow };

/** What a Start answers: the options for the browser (JSON) and the id Finish names. */
export interface CeremonyStart {
  readonly optionsJson: string;
  readonly challengeId: string;
}

export interface Passkeys {
  startRegistration(caller: Caller): Promise<CeremonyStart>;
  finishRegistration(caller: Caller, challengeId: string, responseJson: string, name: string, client: ClientMeta): Promise<PasskeyRow>;
  list(caller: Caller): Promise<PasskeyRow[]>;
  rename(caller: Caller, passkeyId: string, name: string, client: ClientMeta): Promise<PasskeyRow>;
  remove(caller: Caller, passkeyId: string, client: ClientMeta): Promise<void>;
}

export interface PasskeysDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "passkeys" | "webauthnChallenges">;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly settings: WebAuthnSettings;
  /** REAUTH_MAX_AGE_SECONDS: registering and removing a passkey need a sign-in this recent. */
  readonly reauthMaxAgeSec: number;
}

const MAX_NAME = 64;
const DEFAULT_NAME = "Passkey";

/** The name as stored: trimmed, "Passkey" when empty if `optional`; a violation when too long or missing. */
function checkName(violations: Violations, raw: string, optional: boolean): string {
  const name = raw.trim();
  if (name === "" && !optional) violations.add("name", "REQUIRED", "is required");
  else if ([...name].length > MAX_NAME) violations.add("name", "TOO_LONG", `at most ${MAX_NAME} characters`);
  else if (/\p{Cc}/u.test(name)) violations.add("name", "INVALID_CHARACTERS", "must not contain control characters");
  return name === "" ? DEFAULT_NAME : name;
}

function checkPasskeyId(passkeyId: string, violations = new Violations()): Violations {
  if (passkeyId === "") violations.add("passkey_id", "REQUIRED", "is required");
  else if (!isUuid(passkeyId)) violations.add("passkey_id", "INVALID_ID", "is not a passkey id");
  return violations;
}

export function createPasskeys({ db, clock, audit, settings, reauthMaxAgeSec }: PasskeysDeps): Passkeys {
  return {
    async startRegistration(caller) {
      requireRecentAuthentication(caller, clock, reauthMaxAgeSec);
      const user = await requireLiveUser(db, caller.userId);
      const existing = await db.passkeys.listByUser(db.direct, user.id);
      const options = await generateRegistrationOptions({
        rpName: settings.rpName,
        rpID: settings.rpId,
        userID: userHandle(user.id),
        userName: user.email ?? user.username ?? user.phone ?? user.id,
        userDisplayName: user.displayName,
        timeout: settings.challengeTtlSec * 1000,
        attestationType: "none",
        // The authenticator refuses to make a second passkey for an account it holds one of.
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransportFuture[] })),
        authenticatorSelection: { residentKey: "required", userVerification: "required" },
      });
      const now = clock.now();
      const challengeId = await db.webauthnChallenges.insert(db.direct, {
        challenge: options.challenge,
        purpose: "register",
        userId: user.id,
        sessionId: caller.sessionId,
        expiresAt: new Date(now.getTime() + settings.challengeTtlSec * 1000),
      }, now);
      return { optionsJson: JSON.stringify(options), challengeId };
    },

    async finishRegistration(caller, challengeId, responseJson, rawName, client) {
      const violations = new Violations();
      const name = checkName(violations, rawName, true);
      const response = parseFinish<RegistrationResponseJSON>(challengeId, responseJson, violations);
      const user = await requireLiveUser(db, caller.userId);
      // The challenge is spent first, in a statement of its own: whatever follows (a refused
      // response included), it never serves a second attempt. Only its own session can spend it.
      const challenge = await db.webauthnChallenges.consume(db.direct, challengeId.toLowerCase(), "register", { userId: user.id, sessionId: caller.sessionId }, clock.now());
      if (challenge === undefined) throw new AppError("WEBAUTHN_CHALLENGE_INVALID", `registration challenge ${challengeId} unknown, used, expired or not of session ${caller.sessionId}`);
      return db.transaction(async (tx) => {
        const now = clock.now();
        const { registrationInfo: info } = await verified(`registration for ${user.id}`, () =>
          verifyRegistrationResponse({
            response,
            expectedChallenge: challenge,
            expectedOrigin: [...settings.origins],
            expectedRPID: settings.rpId,
            requireUserVerification: true,
          }),
        );
        let passkey: PasskeyRow | undefined;
        try {
          passkey = await db.passkeys.insert(tx, {
            userId: user.id,
            credentialId: info.credential.id,
            publicKey: Buffer.from(info.credential.publicKey),
            signCount: info.credential.counter,
            transports: info.credential.transports ?? [],
            deviceType: info.credentialDeviceType,
            backedUp: info.credentialBackedUp,
            name,
          }, now);
        } catch (err) {
          if (err instanceof UniqueViolationError) throw new AppError("PASSKEY_ALREADY_REGISTERED", `credential ${info.credential.id} is registered already`, { cause: err });
          throw err;
        }
        if (!passkey) throw new AppError("ACCESS_TOKEN_INVALID", `account ${user.id} is not active`);
        await audit.record({ userId: user.id, type: "PASSKEY_REGISTERED", client, sessionId: caller.sessionId, details: { passkey_id: passkey.id, name } }, tx);
        return passkey;
      });
    },

    async list(caller) {
      const user = await requireLiveUser(db, caller.userId);
      return db.passkeys.listByUser(db.direct, user.id);
    },

    async rename(caller, passkeyId, rawName, client) {
      const violations = checkPasskeyId(passkeyId);
      const name = checkName(violations, rawName, false);
      violations.throwIfAny();
      const user = await requireLiveUser(db, caller.userId);
      return db.transaction(async (tx) => {
        const passkey = await db.passkeys.rename(tx, user.id, passkeyId.toLowerCase(), name);
        if (!passkey) throw new AppError("PASSKEY_NOT_FOUND", `account ${user.id} has no passkey ${passkeyId}`);
        await audit.record({ userId: user.id, type: "PASSKEY_RENAMED", client, sessionId: caller.sessionId, details: { passkey_id: passkey.id, name } }, tx);
        return passkey;
      });
    },

    async remove(caller, passkeyId, client) {
      checkPasskeyId(passkeyId).throwIfAny();
      requireRecentAuthentication(caller, clock, reauthMaxAgeSec);
      const user = await requireLiveUser(db, caller.userId);
      await db.transaction(async (tx) => {
        const outcome = await db.passkeys.remove(tx, user.id, passkeyId.toLowerCase());
        if (outcome === "not_found") throw new AppError("PASSKEY_NOT_FOUND", `account ${user.id} has no passkey ${passkeyId}`);
        if (outcome === "last_sign_in_method") throw new AppError("LAST_SIGN_IN_METHOD", `passkey ${passkeyId} is account ${user.id}'s last way to sign in`);
        await audit.record({ userId: user.id, type: "PASSKEY_REMOVED", client, sessionId: caller.sessionId, details: { passkey_id: passkeyId.toLowerCase() } }, tx);
      });
    },
  };
}
