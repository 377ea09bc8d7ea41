// What the MFA feature offers (implemented by mfa.ts from its parts).
import type { Tx, UserRow } from "../../store/index.js";
import type { ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { OtpChannel } from "../accounts/contacts.js";
import type { OtpSent } from "../otp/otp.js";
import type { TokenPair } from "../sessions/session-tokens.js";

export interface MfaSettings {
  readonly issuer: string;
  readonly challengeTtlSec: number;
}

/**
 * The ways to answer a challenge: a TOTP code, a backup code, or a one-time code sent to the
 * account's verified email address (`email`) or phone number (`sms`).
 */
export type MfaMethodName = "totp" | "backup" | OtpChannel;

export interface Challenge {
  readonly token: string;
  readonly expiresAt: Date;
  /** The methods that may answer it, in a stable order (totp, backup, email, sms). */
  readonly methods: readonly MfaMethodName[];
}

export interface TotpSetup {
  readonly secret: string;
  readonly otpauthUrl: string;
  readonly qrCodeDataUrl: string;
}

export interface SecondFactor {
  readonly kind: MfaMethodName;
  readonly code: string;
}

export interface MfaStatus {
  readonly enabled: boolean;
  readonly backupCodesRemaining: number;
  readonly enabledAt: Date | null;
  /** The code factors that count now (enabled, address verified). */
  readonly codeFactors: readonly OtpChannel[];
}

export interface Mfa {
  setup(caller: Caller): Promise<TotpSetup>;
  confirm(caller: Caller, code: string, client: ClientMeta): Promise<string[]>;
  /**
   * The challenge `user` must answer after `firstFactor` (an `amr` list), or undefined when the
   * account has no second factor. MFA_METHOD_UNAVAILABLE when its only second factors are codes
   * to the very address the first factor was proven with.
   */
  challengeFor(tx: Tx, user: UserRow, firstFactor: readonly string[]): Promise<Challenge | undefined>;
  verifyChallenge(challengeToken: string, factor: SecondFactor, client: ClientMeta): Promise<{ user: UserRow; tokens: TokenPair }>;
  /** Sends the code of an `email` or `sms` method the challenge lists. */
  sendChallengeCode(challengeToken: string, method: MfaMethodName | undefined, client: ClientMeta): Promise<OtpSent>;
  disable(caller: Caller, password: string, code: string, client: ClientMeta): Promise<void>;
  regenerateBackupCodes(caller: Caller, totpCode: string, client: ClientMeta): Promise<string[]>;
  enableCodeFactor(caller: Caller, channel: OtpChannel | undefined, password: string, client: ClientMeta): Promise<void>;
  disableCodeFactor(caller: Caller, channel: OtpChannel | undefined, password: string, client: ClientMeta): Promise<void>;
  status(userId: string): Promise<MfaStatus>;
}
