// Reauthenticate: the signed-in person proves again what sign-in asks of the account (the
// password, plus a TOTP or backup code when MFA is on), and their session records it: `auth_time`
// becomes now and `amr` what was proven, so RPCs that want a recent proof (ChangeEmail and
// ChangePhone by REAUTH_MAX_AGE_SECONDS; VerifyToken's max_auth_age; step-up for administrators)
// accept its next tokens. Same limits and audit as Login (credential-checks.ts).
//
// An account without a password (created by a one-time code) has nothing to re-prove here:
// FAILED_PRECONDITION (PASSWORD_NOT_SET). Signing in again by code (OtpService) starts a session
// whose auth_time is now, which serves the same purpose; a code to a verified contact as a way to
// re-prove is left for later.
import type { Store } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import type { KeyedHash, Keyring } from "../crypto.js";
import { AppError, Violations } from "../errors.js";
import { createBackupCodes } from "../mfa/backup-codes.js";
import { BACKUP_CODE, TOTP_CODE } from "../mfa/codes.js";
import { createTotp } from "../mfa/totp.js";
import type { SessionTokens, TokenPair } from "../sessions/session-tokens.js";
import type { CredentialChecks } from "./credential-checks.js";
import { requireLiveUser } from "./live-user.js";

/**
 * PERMISSION_DENIED (REAUTHENTICATION_REQUIRED) unless the caller's session proved its factors
 * within the last `maxAgeSec` seconds (the access token's auth_time, ASVS 7.5.1).
 */
export function requireRecentAuthentication(caller: Caller, clock: Clock, maxAgeSec: number): void {
  const ageSec = clock.now().getTime() / 1000 - caller.claims.authTime;
  if (ageSec > maxAgeSec) {
    throw new AppError("REAUTHENTICATION_REQUIRED", `session ${caller.sessionId} authenticated ${Math.round(ageSec)} s ago, more than ${maxAgeSec} s`);
  }
}

export interface ReauthenticationInput {
  readonly password: string;
  /** "none" when the request names no method; "other" for one Reauthenticate does not take. */
  readonly mfaMethod: "totp" | "backup" | "none" | "other";
  readonly mfaCode: string;
}

export interface Reauthentication {
  reauthenticate(caller: Caller, input: ReauthenticationInput, client: ClientMeta): Promise<TokenPair>;
}

export interface ReauthenticationDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "totp" | "backupCodes">;
  readonly clock: Clock;
  readonly kek: Keyring;
  readonly backupCodeHash: KeyedHash;
  readonly checks: CredentialChecks;
  readonly sessionTokens: SessionTokens;
  readonly audit: AuditLog;
}

/** The code as typed without spaces and dashes, lower-cased (as MfaService reads it). */
const compact = (code: string) => code.replace(/[\s-]/g, "").toLowerCase();

export function createReauthentication({ db, clock, kek, backupCodeHash, checks, sessionTokens, audit }: ReauthenticationDeps): Reauthentication {
  // The same credentials VerifyMfa checks (stateless parts of the MFA feature).
  const totp = createTotp(db, clock, kek);
  const backupCodes = createBackupCodes(db, clock, backupCodeHash);

  return {
    async reauthenticate(caller, input, client) {
      const user = await requireLiveUser(db, caller.userId);
      if (user.passwordHash === null) throw new AppError("PASSWORD_NOT_SET", `account ${user.id} has no password to re-prove`);
      const mfa = user.mfaEnabledAt !== null;
      if (!mfa && input.mfaMethod !== "none") throw new AppError("MFA_NOT_ENABLED", `reauthenticate of ${user.id} named a second factor it does not have`);
      const violations = new Violations();
      if (input.password === "") violations.add("password", "REQUIRED", "is required");
      const code = compact(input.mfaCode);
      if (mfa) {
        if (input.mfaMethod === "none") violations.add("mfa_method", "REQUIRED", "the account has a second factor: TOTP or BACKUP_CODE");
        else if (input.mfaMethod === "other") violations.add("mfa_method", "UNSUPPORTED", "must be TOTP or BACKUP_CODE");
        if (code === "") violations.add("mfa_code", "REQUIRED", "is required");
        else if (!(input.mfaMethod === "backup" ? BACKUP_CODE : TOTP_CODE).test(code)) violations.add("mfa_code", "INVALID_FORMAT", "is not a code of the expected form");
      }
      violations.throwIfAny();

      const context = { action: "reauthenticate", sessionId: caller.sessionId };
      const password = await checks.password(user, input.password, client, context);
      if (!password.ok) throw new AppError("WRONG_PASSWORD", `wrong password reauthenticating ${user.id}`);

      const factor = input.mfaMethod === "backup" ? "backup" : "totp";
      // As VerifyMfa records it: pwd, then otp (TOTP) or kba (backup code), and mfa.
      const amr = mfa ? ["pwd", factor === "totp" ? "otp" : "kba", "mfa"] : ["pwd"];
      // The code (when there is one) is accepted in the same transaction as the session's renewal:
      // a session ended meanwhile rolls the acceptance back, so the code is not used up for nothing.
      const renew = () =>
        db.transaction(async (tx) => {
          if (mfa && !(factor === "totp" ? await totp.accept(tx, user.id, code, true) : await backupCodes.accept(tx, user.id, code))) return undefined;
          const tokens = await sessionTokens.renew(tx, user, caller.sessionId, amr);
          if (!tokens) throw new AppError("ACCESS_TOKEN_INVALID", `session ${caller.sessionId} ended before it was renewed`);
          if (mfa && factor === "backup") await audit.record({ userId: user.id, type: "BACKUP_CODE_USED", client, sessionId: caller.sessionId }, tx);
          await audit.record({ userId: user.id, type: "REAUTHENTICATED", client, sessionId: caller.sessionId, details: { method: amr.join("+") } }, tx);
          return tokens;
        });
      const tokens = mfa ? await checks.secondFactor(user.id, factor, client, context, renew) : await renew();
      if (!tokens) throw new AppError("MFA_CODE_INVALID", `wrong ${factor} code reauthenticating ${user.id}`);
      return tokens;
    },
  };
}
