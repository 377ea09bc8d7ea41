// One-time codes as a second factor: the account's verified email address and/or phone number.
//
// A code factor is a flag per channel (store: mfa_code_factors), not an address. It counts only
// while the account has a verified address on that channel (store/mfa.ts codeFactorUsable), so
// it follows the address: when ChangeEmail / ChangePhone switch to a new address (only once a
// code sent there is verified) the factor goes with it; an address removed, or never verified,
// is no factor, and the challenge no longer offers it. Enabling is one conditional statement
// on the address being verified at that moment.
//
// A code factor is the second step after a password: enabling one needs the password (and an
// account that has one), so a one-time-code sign-in to the same address can never be both
// steps (challenges.ts leaves that channel out of the challenge).
import type { Store } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import type { OtpChannel } from "../accounts/contacts.js";
import type { CredentialChecks } from "../accounts/credential-checks.js";
import { endPendingProofs } from "../accounts/credential-changes.js";
import { requireLiveUser } from "../accounts/live-user.js";
import { AppError, invalidField, Violations } from "../errors.js";
import type { Otp, OtpSent } from "../otp/otp.js";
import { challengeBinding, factorContact, type Challenges } from "./challenges.js";
import type { MfaMethodName } from "./types.js";

export interface CodeFactors {
  enable(caller: Caller, channel: OtpChannel | undefined, password: string, client: ClientMeta): Promise<void>;
  disable(caller: Caller, channel: OtpChannel | undefined, password: string, client: ClientMeta): Promise<void>;
  /** Sends the code of an email or SMS method the challenge lists (MfaService.SendMfaCode). */
  sendChallengeCode(challengeToken: string, method: MfaMethodName | undefined, client: ClientMeta): Promise<OtpSent>;
}

export interface CodeFactorDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "mfaChallenges" | "mfaCodeFactors" | "otpCodes">;
  readonly clock: Clock;
  readonly otp: Otp;
  readonly challenges: Challenges;
  readonly audit: AuditLog;
  readonly checks: CredentialChecks;
}

const METHOD_NAMES: Record<OtpChannel, string> = { email: "email_code", sms: "sms_code" };

export function createCodeFactors({ db, clock, otp, challenges, audit, checks }: CodeFactorDeps): CodeFactors {
  /** The request's channel and the caller's account, the password checked within the login budget. */
  async function authorised(caller: Caller, channel: OtpChannel | undefined, password: string, client: ClientMeta, action: string) {
    const violations = new Violations();
    if (channel === undefined) violations.add("channel", "REQUIRED", "must be SMS or EMAIL");
    if (password === "") violations.add("password", "REQUIRED", "is required");
    violations.throwIfAny();
    const user = await requireLiveUser(db, caller.userId);
    if (user.passwordHash === null) throw new AppError("PASSWORD_NOT_SET", `${user.id} has no password`);
    const check = await checks.password(user, password, client, { action, sessionId: caller.sessionId });
    if (!check.ok) throw new AppError("WRONG_PASSWORD", `wrong password (${action}) for ${user.id}`);
    return { user, channel: channel! };
  }

  return {
    async enable(caller, rawChannel, password, client) {
      const { user, channel } = await authorised(caller, rawChannel, password, client, "enable_code_factor");
      if ((await db.mfaCodeFactors.enabled(db.direct, user.id)).includes(channel)) throw new AppError("MFA_ALREADY_ENABLED", `${channel} factor already on for ${user.id}`);
      await db.transaction(async (tx) => {
        // Conditional on the address being verified now (store: mfaCodeFactors.enable).
        if (!(await db.mfaCodeFactors.enable(tx, user.id, channel, clock.now()))) {
          throw new AppError("CONTACT_NOT_VERIFIED", `${user.id} has no verified ${channel} address (or enabled it concurrently)`);
        }
        await endPendingProofs(db, tx, user.id); // a factor changed: nothing proven before completes after
        await audit.record({ userId: user.id, type: "MFA_ENABLED", client, sessionId: caller.sessionId, details: { method: METHOD_NAMES[channel] } }, tx);
      });
    },

    async disable(caller, rawChannel, password, client) {
      const { user, channel } = await authorised(caller, rawChannel, password, client, "disable_code_factor");
      await db.transaction(async (tx) => {
        if (!(await db.mfaCodeFactors.disable(tx, user.id, channel))) throw new AppError("MFA_NOT_ENABLED", `${channel} factor not on for ${user.id}`);
        await endPendingProofs(db, tx, user.id); // a factor changed: nothing proven before completes after
        await audit.record({ userId: user.id, type: "MFA_DISABLED", client, sessionId: caller.sessionId, details: { method: METHOD_NAMES[channel] } }, tx);
      });
    },

    async sendChallengeCode(challengeToken, method, client) {
      if (method !== "email" && method !== "sms") {
        throw invalidField("method", method === undefined ? "REQUIRED" : "INVALID_METHOD", "must be MFA_METHOD_EMAIL_CODE or MFA_METHOD_SMS_CODE");
      }
      const { user, tokenHash, methods } = await challenges.find(challengeToken);
      if (!methods.includes(method)) throw new AppError("MFA_METHOD_UNAVAILABLE", `${method} does not answer this challenge of ${user.id}`);
      // The send limits of every code (per address, per client address, SMS budgets); bound to
      // the account and to this challenge.
      return otp.send(factorContact(user, method), "mfa", user.id, client, challengeBinding(tokenHash));
    },
  };
}
