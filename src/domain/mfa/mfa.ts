// TOTP second factor (RFC 6238 through otplib) with single-use backup codes, and the MFA
// challenge that sits between a first factor (password or one-time code) and the session.
import { createHmac, randomInt } from "node:crypto";
import { generateSecret, generateURI, verifySync } from "otplib";
import QRCode from "qrcode";
import type { DataSource, EntityManager } from "typeorm";
import { UserEntity, type UserRow } from "../../db/entities/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { deriveKey, randomToken, seal, sha256, unseal } from "../crypto.js";
import { AppError, invalidField } from "../errors.js";
import type { CredentialChecks, SecondFactorMethod } from "../accounts/credential-checks.js";
import { endPendingProofs } from "../accounts/credential-changes.js";
import type { SessionTokens, TokenPair } from "../sessions/session-tokens.js";

export const TOTP_PERIOD_SEC = 30;
export const BACKUP_CODE_COUNT = 10;
export const MAX_CHALLENGE_ATTEMPTS = 5;
const BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";

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
  createChallenge(manager: EntityManager, userId: string, firstFactor: readonly string[]): Promise<Challenge>;
  verifyChallenge(challengeToken: string, factor: SecondFactor, client: ClientMeta): Promise<{ user: UserRow; tokens: TokenPair }>;
  disable(caller: Caller, password: string, code: string, client: ClientMeta): Promise<void>;
  regenerateBackupCodes(caller: Caller, totpCode: string, client: ClientMeta): Promise<string[]>;
  status(userId: string): Promise<{ enabled: boolean; backupCodesRemaining: number; enabledAt: Date | null }>;
}

export interface MfaDeps {
  readonly db: DataSource;
  readonly clock: Clock;
  readonly kek: Buffer;
  readonly sessionTokens: SessionTokens;
  readonly audit: AuditLog;
  /** Every password and code check, within the shared failure limits (credential-checks.ts), audited. */
  readonly checks: CredentialChecks;
  readonly settings: MfaSettings;
}

export { MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR } from "../accounts/credential-checks.js";

function requireCode(field: string, code: string, pattern: RegExp): string {
  const trimmed = code.replace(/[\s-]/g, "").toLowerCase();
  if (trimmed === "") throw invalidField(field, "REQUIRED", "is required");
  if (!pattern.test(trimmed)) throw invalidField(field, "INVALID_FORMAT", "is not a code of the expected form");
  return trimmed;
}

export function createMfa({ db, clock, kek, sessionTokens, audit, checks, settings }: MfaDeps): Mfa {
  const backupKey = deriveKey(kek, "identity backup codes");
  const hashBackup = (code: string) => createHmac("sha256", backupKey).update(code).digest();
  const sealSecret = (userId: string, secret: string) => seal(kek, Buffer.from(secret), `totp:${userId}`);
  const unsealSecret = (userId: string, sealed: Buffer) => unseal(kek, sealed, `totp:${userId}`).toString();

  function newBackupCodes(): string[] {
    return Array.from({ length: BACKUP_CODE_COUNT }, () => {
      const chars = Array.from({ length: 10 }, () => BACKUP_ALPHABET[randomInt(BACKUP_ALPHABET.length)]).join("");
      return `${chars.slice(0, 5)}-${chars.slice(5)}`;
    });
  }

  async function storeBackupCodes(manager: EntityManager, userId: string, codes: string[]): Promise<void> {
    await manager.query(`DELETE FROM backup_codes WHERE user_id = $1`, [userId]);
    for (const code of codes) {
      await manager.query(`INSERT INTO backup_codes (user_id, code_hash) VALUES ($1, $2)`, [userId, hashBackup(code.replace("-", ""))]);
    }
  }

  /** Accepts a TOTP code once: the matching time step must be newer than the last one used. */
  async function acceptTotp(manager: EntityManager, userId: string, code: string, requireConfirmed: boolean): Promise<boolean> {
    const [credential] = (await manager.query(
      `SELECT secret_sealed, confirmed_at FROM totp_credentials WHERE user_id = $1`,
      [userId],
    )) as Array<{ secret_sealed: Buffer; confirmed_at: Date | null }>;
    if (!credential || (requireConfirmed && credential.confirmed_at === null)) return false;
    const result = verifySync({
      secret: unsealSecret(userId, credential.secret_sealed),
      token: code,
      epoch: Math.floor(clock.now().getTime() / 1000),
      epochTolerance: TOTP_PERIOD_SEC,
      period: TOTP_PERIOD_SEC,
    });
    if (!result.valid || !("timeStep" in result)) return false;
    // Atomic: of two requests with the same code, only one advances the step.
    const [, advanced] = (await manager.query(
      `UPDATE totp_credentials SET last_used_step = $2 WHERE user_id = $1 AND (last_used_step IS NULL OR last_used_step < $2)`,
      [userId, result.timeStep],
    )) as [unknown, number];
    return advanced === 1;
  }

  async function acceptBackupCode(manager: EntityManager, userId: string, code: string): Promise<boolean> {
    const [, used] = (await manager.query(
      `UPDATE backup_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
      [userId, hashBackup(code), clock.now()],
    )) as [unknown, number];
    return used === 1;
  }

  async function enabledUser(userId: string): Promise<UserRow> {
    const user = await db.manager.findOneBy(UserEntity, { id: userId });
    if (!user || user.status !== "active") throw new AppError("ACCESS_TOKEN_INVALID", `account ${userId} not active`);
    return user;
  }

  return {
    async setup(caller) {
      const user = await enabledUser(caller.userId);
      if (user.mfaEnabledAt) throw new AppError("MFA_ALREADY_ENABLED", `mfa already enabled for ${user.id}`);
      const secret = generateSecret({ length: 20 });
      const label = user.email ?? user.username ?? user.phone ?? user.id;
      const otpauthUrl = generateURI({ issuer: settings.issuer, label, secret, period: TOTP_PERIOD_SEC });
      await db.query(
        `INSERT INTO totp_credentials (user_id, secret_sealed, confirmed_at, last_used_step) VALUES ($1, $2, NULL, NULL)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, confirmed_at = NULL, last_used_step = NULL, created_at = now()`,
        [user.id, sealSecret(user.id, secret)],
      );
      return { secret, otpauthUrl, qrCodeDataUrl: await QRCode.toDataURL(otpauthUrl, { errorCorrectionLevel: "M", margin: 2, width: 240 }) };
    },

    async confirm(caller, rawCode, client) {
      const code = requireCode("code", rawCode, /^\d{6}$/);
      const user = await enabledUser(caller.userId);
      if (user.mfaEnabledAt) throw new AppError("MFA_ALREADY_ENABLED", `mfa already enabled for ${user.id}`);
      const codes = await checks.secondFactor(user.id, "totp", client, { action: "confirm_totp", sessionId: caller.sessionId }, () =>
        db.transaction(async (manager) => {
          if (!(await acceptTotp(manager, user.id, code, false))) return undefined;
          const now = clock.now();
          await manager.query(`UPDATE totp_credentials SET confirmed_at = $2 WHERE user_id = $1`, [user.id, now]);
          await manager.update(UserEntity, { id: user.id }, { mfaEnabledAt: now });
          const codes = newBackupCodes();
          await storeBackupCodes(manager, user.id, codes);
          await endPendingProofs(manager, user.id); // a factor changed: nothing proven before completes after
          await audit.record({ userId: user.id, type: "MFA_ENABLED", client, sessionId: caller.sessionId }, manager);
          return codes;
        }),
      );
      if (!codes) throw new AppError("MFA_CODE_INVALID", `wrong confirmation code for ${user.id}`);
      return codes;
    },

    async createChallenge(manager, userId, firstFactor) {
      const token = `mfa_${randomToken(32)}`;
      const expiresAt = new Date(clock.now().getTime() + settings.challengeTtlSec * 1000);
      await manager.query(
        `INSERT INTO mfa_challenges (user_id, token_hash, first_factor, expires_at) VALUES ($1, $2, $3, $4)`,
        [userId, sha256(token), [...firstFactor], expiresAt],
      );
      return { token, expiresAt };
    },

    async verifyChallenge(challengeToken, factor, client) {
      if (challengeToken === "") throw invalidField("challenge_token", "REQUIRED", "is required");
      const code = factor.kind === "totp"
        ? requireCode("totp_code", factor.code, /^\d{6}$/)
        : requireCode("backup_code", factor.code, /^[a-z0-9]{10}$/);
      // Whose challenge it is, read first: the shared limit is per account and comes before the
      // attempt is counted, so a limited call uses up nothing of the challenge.
      const [found] = (await db.query(
        `SELECT user_id FROM mfa_challenges WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3`,
        [sha256(challengeToken), clock.now(), MAX_CHALLENGE_ATTEMPTS],
      )) as Array<{ user_id: string }>;
      if (!found) throw new AppError("MFA_CHALLENGE_INVALID", "mfa challenge unknown, expired, used or exhausted");
      const user = await db.manager.findOneBy(UserEntity, { id: found.user_id });
      if (!user || user.status !== "active" || !user.mfaEnabledAt) throw new AppError("MFA_CHALLENGE_INVALID", "challenge account not eligible");
      // The shared MFA failure limit first (also for DisableTotp, RegenerateBackupCodes, ConfirmTotp).
      const outcome = await checks.secondFactor(user.id, factor.kind, client, { action: "verify_mfa" }, async () => {
        // The attempt is counted in its own statement (committed whatever the code), conditional
        // on the challenge still being live, so a wrong code uses one up even under concurrency.
        const [rows] = (await db.query(
          `UPDATE mfa_challenges SET attempts = attempts + 1
           WHERE token_hash = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3 AND attempts < $4
           RETURNING id, first_factor`,
          [sha256(challengeToken), user.id, clock.now(), MAX_CHALLENGE_ATTEMPTS],
        )) as [Array<{ id: string; first_factor: string[] }>, number];
        const challenge = rows[0];
        if (!challenge) throw new AppError("MFA_CHALLENGE_INVALID", "mfa challenge used or exhausted concurrently");
        return db.transaction(async (manager) => {
          const accepted = factor.kind === "totp"
            ? await acceptTotp(manager, user.id, code, true)
            : await acceptBackupCode(manager, user.id, code);
          if (!accepted) return undefined;
          const [, consumed] = (await manager.query(
            `UPDATE mfa_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL`,
            [challenge.id, clock.now()],
          )) as [unknown, number];
          if (consumed !== 1) throw new AppError("MFA_CHALLENGE_INVALID", "challenge used concurrently");
          const amr = [...new Set([...challenge.first_factor, factor.kind === "totp" ? "otp" : "kba", "mfa"])];
          const tokens = await sessionTokens.start(manager, user, amr, client);
          if (factor.kind === "backup") await audit.record({ userId: user.id, type: "BACKUP_CODE_USED", client, sessionId: tokens.sessionId }, manager);
          await audit.record({ userId: user.id, type: "LOGIN_SUCCEEDED", client, sessionId: tokens.sessionId, details: { method: amr.join("+") } }, manager);
          return tokens;
        });
      });
      if (!outcome) throw new AppError("MFA_CODE_INVALID", `wrong ${factor.kind} code for ${user.id}`);
      return { user, tokens: outcome };
    },

    async disable(caller, password, rawCode, client) {
      if (password === "") throw invalidField("password", "REQUIRED", "is required");
      const code = requireCode("code", rawCode, /^(\d{6}|[a-z0-9]{10})$/);
      const user = await enabledUser(caller.userId);
      if (!user.mfaEnabledAt) throw new AppError("MFA_NOT_ENABLED", `mfa not enabled for ${user.id}`);
      const context = { action: "disable_totp", sessionId: caller.sessionId };
      // Each secret within its own shared budget: the password as at login, the code as at VerifyMfa.
      const check = await checks.password(user, password, client, context);
      if (!check.ok) throw new AppError("WRONG_PASSWORD", `wrong password disabling mfa for ${user.id}`);
      const method: SecondFactorMethod = /^\d{6}$/.test(code) ? "totp" : "backup";
      const disabled = await checks.secondFactor(user.id, method, client, context, () =>
        db.transaction(async (manager) => {
          const accepted = method === "totp" ? await acceptTotp(manager, user.id, code, true) : await acceptBackupCode(manager, user.id, code);
          if (!accepted) return undefined;
          await manager.query(`DELETE FROM backup_codes WHERE user_id = $1`, [user.id]);
          await manager.query(`DELETE FROM totp_credentials WHERE user_id = $1`, [user.id]);
          await manager.update(UserEntity, { id: user.id }, { mfaEnabledAt: null });
          await endPendingProofs(manager, user.id); // a factor changed: nothing proven before completes after
          await audit.record({ userId: user.id, type: "MFA_DISABLED", client, sessionId: caller.sessionId }, manager);
          return true;
        }),
      );
      if (!disabled) throw new AppError("MFA_CODE_INVALID", `wrong code disabling mfa for ${user.id}`);
    },

    async regenerateBackupCodes(caller, rawCode, client) {
      const code = requireCode("totp_code", rawCode, /^\d{6}$/);
      const user = await enabledUser(caller.userId);
      if (!user.mfaEnabledAt) throw new AppError("MFA_NOT_ENABLED", `mfa not enabled for ${user.id}`);
      const codes = await checks.secondFactor(user.id, "totp", client, { action: "regenerate_backup_codes", sessionId: caller.sessionId }, () =>
        db.transaction(async (manager) => {
          if (!(await acceptTotp(manager, user.id, code, true))) return undefined;
          const codes = newBackupCodes();
          await storeBackupCodes(manager, user.id, codes);
          await endPendingProofs(manager, user.id); // a factor changed: nothing proven before completes after
          await audit.record({ userId: user.id, type: "BACKUP_CODES_REGENERATED", client, sessionId: caller.sessionId }, manager);
          return codes;
        }),
      );
      if (!codes) throw new AppError("MFA_CODE_INVALID", `wrong code for ${user.id}`);
      return codes;
    },

    async status(userId) {
      const user = await enabledUser(userId);
      const [row] = (await db.query(`SELECT count(*)::int AS n FROM backup_codes WHERE user_id = $1 AND used_at IS NULL`, [userId])) as Array<{ n: number }>;
      return { enabled: user.mfaEnabledAt !== null, backupCodesRemaining: user.mfaEnabledAt ? row!.n : 0, enabledAt: user.mfaEnabledAt };
    },
  };
}
