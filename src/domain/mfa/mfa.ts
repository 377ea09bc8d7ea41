// Second factors: TOTP (RFC 6238 through otplib) with single-use backup codes, one-time codes
// to the account's verified email address or phone number, and the MFA challenge that sits
// between a first factor (password or one-time code) and the session.
// The parts: totp.ts (the credential and accepting a code once), backup-codes.ts, challenges.ts
// (creating and verifying a challenge), enrolment.ts (TOTP setup, confirm, disable, regenerate,
// status), code-factors.ts (email and SMS codes: enable, disable, send for a challenge).
import type { Store } from "../../store/index.js";
import type { AuditLog } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import type { KeyedHash, Keyring } from "../crypto.js";
import type { CredentialChecks } from "../accounts/credential-checks.js";
import type { OtpCodes } from "../otp/codes.js";
import type { Otp } from "../otp/otp.js";
import type { SessionTokens } from "../sessions/session-tokens.js";
import type { Mfa, MfaSettings } from "./types.js";
import { createBackupCodes } from "./backup-codes.js";
import { createChallenges } from "./challenges.js";
import { createCodeFactors } from "./code-factors.js";
import { createEnrolment } from "./enrolment.js";
import { createTotp } from "./totp.js";

export { TOTP_PERIOD_SEC } from "./totp.js";
export { BACKUP_CODE_COUNT } from "./backup-codes.js";
export { MAX_CHALLENGE_ATTEMPTS } from "./challenges.js";
export { MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR } from "../accounts/credential-checks.js";

export type { Challenge, Mfa, MfaMethodName, MfaSettings, MfaStatus, SecondFactor, TotpSetup } from "./types.js";

/** What MFA needs of the store. */
export type MfaDb = Pick<Store, "transaction" | "direct" | "users" | "totp" | "backupCodes" | "mfaChallenges" | "mfaCodeFactors" | "otpCodes">;

export interface MfaDeps {
  readonly db: MfaDb;
  readonly clock: Clock;
  readonly kek: Keyring;
  /** The backup codes' HMAC (src/domain/secrets/hmac-keys.ts). */
  readonly backupCodeHash: KeyedHash;
  readonly sessionTokens: SessionTokens;
  readonly audit: AuditLog;
  /** Every password and code check, within the shared failure limits (credential-checks.ts), audited. */
  readonly checks: CredentialChecks;
  readonly settings: MfaSettings;
  /** Sends the codes of email and SMS factors within the limits of every code. */
  readonly otp: Otp;
  /** Checks them (single use, attempt caps). */
  readonly otpCodes: OtpCodes;
}

export function createMfa({ db, clock, kek, backupCodeHash, sessionTokens, audit, checks, settings, otp, otpCodes }: MfaDeps): Mfa {
  const totp = createTotp(db, clock, kek);
  const backupCodes = createBackupCodes(db, clock, backupCodeHash);
  const challenges = createChallenges({ db, clock, settings, totp, backupCodes, otpCodes, sessionTokens, audit, checks });
  const codeFactors = createCodeFactors({ db, clock, otp, challenges, audit, checks });
  const enrolment = createEnrolment({ db, clock, settings, totp, backupCodes, audit, checks });
  return {
    setup: enrolment.setup,
    confirm: enrolment.confirm,
    challengeFor: challenges.create,
    verifyChallenge: challenges.verify,
    sendChallengeCode: codeFactors.sendChallengeCode,
    enableCodeFactor: codeFactors.enable,
    disableCodeFactor: codeFactors.disable,
    disable: enrolment.disable,
    regenerateBackupCodes: enrolment.regenerateBackupCodes,
    status: enrolment.status,
  };
}
