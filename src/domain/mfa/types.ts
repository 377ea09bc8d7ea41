// What the MFA feature offers (implemented by mfa.ts from its parts).
import type { Tx, UserRow } from "../../store/index.js";
import type { ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { TokenPair } from "../sessions/session-tokens.js";

export interface MfaSettings {
  readonly issuer: string;
  readonly challengeTtlSec: number;
}

export interface Challenge {
  readonly token: string;
  readonly expiresAt: Date;
}

export interface TotpSetup {
  readonly secret: string;
  readonly otpauthUrl: string;
  readonly qrCodeDataUrl: string;
}

export type SecondFactor = { readonly kind: "totp"; readonly code: string } | { readonly kind: "backup"; readonly code: string };

export interface Mfa {
  setup(caller: Caller): Promise<TotpSetup>;
  confirm(caller: Caller, code: string, client: ClientMeta): Promise<string[]>;
  createChallenge(tx: Tx, userId: string, firstFactor: readonly string[]): Promise<Challenge>;
  verifyChallenge(challengeToken: string, factor: SecondFactor, client: ClientMeta): Promise<{ user: UserRow; tokens: TokenPair }>;
  disable(caller: Caller, password: string, code: string, client: ClientMeta): Promise<void>;
  regenerateBackupCodes(caller: Caller, totpCode: string, client: ClientMeta): Promise<string[]>;
  status(userId: string): Promise<{ enabled: boolean; backupCodesRemaining: number; enabledAt: Date | null }>;
}
