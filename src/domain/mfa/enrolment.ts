// Turning MFA on and off for the signed-in account: set up a TOTP secret, confirm it with a
// first code (which enables MFA and hands out backup codes once), regenerate backup codes,
// disable, and report status. Every change of a factor ends what was proven before it.
import type { Store } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import type { CredentialChecks, SecondFactorMethod } from "../accounts/credential-checks.js";
import { endPendingProofs } from "../accounts/credential-changes.js";
import { requireLiveUser } from "../accounts/live-user.js";
import { AppError, invalidField } from "../errors.js";
import type { BackupCodes } from "./backup-codes.js";
import { ANY_CODE, requireCode, TOTP_CODE } from "./codes.js";
import type { Mfa, MfaSettings } from "./types.js";
import type { Totp } from "./totp.js";

export type Enrolment = Pick<Mfa, "setup" | "confirm" | "disable" | "regenerateBackupCodes" | "status">;

export interface EnrolmentDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "totp" | "backupCodes" | "mfaChallenges" | "mfaCodeFactors" | "otpCodes">;
  readonly clock: Clock;
  readonly settings: MfaSettings;
  readonly totp: Totp;
  readonly backupCodes: BackupCodes;
  readonly audit: AuditLog;
  readonly checks: CredentialChecks;
}

export function createEnrolment({ db, clock, settings, totp, backupCodes, audit, checks }: EnrolmentDeps): Enrolment {
  const liveUser = (userId: string) => requireLiveUser(db, userId);

  return {
    async setup(caller) {
      const user = await liveUser(caller.userId);
      if (user.mfaEnabledAt) throw new AppError("MFA_ALREADY_ENABLED", `mfa already enabled for ${user.id}`);
      const label = user.email ?? user.username ?? user.phone ?? user.id;
      return totp.enrol(user.id, settings.issuer, label);
    },

    async confirm(caller, rawCode, client) {
      const code = requireCode("code", rawCode, TOTP_CODE);
      const user = await liveUser(caller.userId);
      if (user.mfaEnabledAt) throw new AppError("MFA_ALREADY_ENABLED", `mfa already enabled for ${user.id}`);
      const codes = await checks.secondFactor(user.id, "totp", client, { action: "confirm_totp", sessionId: caller.sessionId }, () =>
        db.transaction(async (tx) => {
          if (!(await totp.accept(tx, user.id, code, false))) return undefined;
          const now = clock.now();
          await db.totp.confirm(tx, user.id, now);
          await db.users.setMfaEnabledAt(tx, user.id, now);
          const codes = await backupCodes.replace(tx, user.id);
          await endPendingProofs(db, tx, user.id); // a factor changed: nothing proven before completes after
          await audit.record({ userId: user.id, type: "MFA_ENABLED", client, sessionId: caller.sessionId }, tx);
          return codes;
        }),
      );
      if (!codes) throw new AppError("MFA_CODE_INVALID", `wrong confirmation code for ${user.id}`);
      return codes;
    },

    async disable(caller, password, rawCode, client) {
      if (password === "") throw invalidField("password", "REQUIRED", "is required");
      const code = requireCode("code", rawCode, ANY_CODE);
      const user = await liveUser(caller.userId);
      if (!user.mfaEnabledAt) throw new AppError("MFA_NOT_ENABLED", `mfa not enabled for ${user.id}`);
      const context = { action: "disable_totp", sessionId: caller.sessionId };
      // Each secret within its own shared budget: the password as at login, the code as at VerifyMfa.
      const check = await checks.password(user, password, client, context);
      if (!check.ok) throw new AppError("WRONG_PASSWORD", `wrong password disabling mfa for ${user.id}`);
      const method: SecondFactorMethod = TOTP_CODE.test(code) ? "totp" : "backup";
      const disabled = await checks.secondFactor(user.id, method, client, context, () =>
        db.transaction(async (tx) => {
          const accepted = method === "totp" ? await totp.accept(tx, user.id, code, true) : await backupCodes.accept(tx, user.id, code);
          if (!accepted) return undefined;
          await db.backupCodes.deleteAll(tx, user.id);
          await db.totp.delete(tx, user.id);
          await db.users.setMfaEnabledAt(tx, user.id, null);
          await endPendingProofs(db, tx, user.id); // a factor changed: nothing proven before completes after
          await audit.record({ userId: user.id, type: "MFA_DISABLED", client, sessionId: caller.sessionId }, tx);
          return true;
        }),
      );
      if (!disabled) throw new AppError("MFA_CODE_INVALID", `wrong code disabling mfa for ${user.id}`);
    },

    async regenerateBackupCodes(caller, rawCode, client) {
      const code = requireCode("totp_code", rawCode, TOTP_CODE);
      const user = await liveUser(caller.userId);
      if (!user.mfaEnabledAt) throw new AppError("MFA_NOT_ENABLED", `mfa not enabled for ${user.id}`);
      const codes = await checks.secondFactor(user.id, "totp", client, { action: "regenerate_backup_codes", sessionId: caller.sessionId }, () =>
        db.transaction(async (tx) => {
          if (!(await totp.accept(tx, user.id, code, true))) return undefined;
          const codes = await backupCodes.replace(tx, user.id);
          await endPendingProofs(db, tx, user.id); // a factor changed: nothing proven before completes after
          await audit.record({ userId: user.id, type: "BACKUP_CODES_REGENERATED", client, sessionId: caller.sessionId }, tx);
          return codes;
        }),
      );
      if (!codes) throw new AppError("MFA_CODE_INVALID", `wrong code for ${user.id}`);
      return codes;
    },

    async status(userId) {
      const user = await liveUser(userId);
      return {
        enabled: user.mfaEnabledAt !== null,
        backupCodesRemaining: user.mfaEnabledAt ? await backupCodes.remaining(userId) : 0,
        enabledAt: user.mfaEnabledAt,
        codeFactors: await db.mfaCodeFactors.usable(db.direct, userId),
      };
    },
  };
}
