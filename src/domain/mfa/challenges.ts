// The MFA challenge: the half-finished sign-in a first factor leaves for an account with a
// second factor. VerifyMfa turns it into a session with a TOTP or backup code.
import type { Store, Tx, UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import type { CredentialChecks } from "../accounts/credential-checks.js";
import { randomToken, sha256 } from "../crypto.js";
import { AppError, invalidField } from "../errors.js";
import type { SessionTokens, TokenPair } from "../sessions/session-tokens.js";
import type { BackupCodes } from "./backup-codes.js";
import { BACKUP_CODE, requireCode, TOTP_CODE } from "./codes.js";
import type { Challenge, MfaSettings, SecondFactor } from "./types.js";
import type { Totp } from "./totp.js";

export const MAX_CHALLENGE_ATTEMPTS = 5;

export interface Challenges {
  create(tx: Tx, userId: string, firstFactor: readonly string[]): Promise<Challenge>;
  verify(challengeToken: string, factor: SecondFactor, client: ClientMeta): Promise<{ user: UserRow; tokens: TokenPair }>;
}

export interface ChallengeDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "mfaChallenges">;
  readonly clock: Clock;
  readonly settings: MfaSettings;
  readonly totp: Totp;
  readonly backupCodes: BackupCodes;
  readonly sessionTokens: SessionTokens;
  readonly audit: AuditLog;
  readonly checks: CredentialChecks;
}

export function createChallenges({ db, clock, settings, totp, backupCodes, sessionTokens, audit, checks }: ChallengeDeps): Challenges {
  return {
    async create(tx, userId, firstFactor) {
      const token = `mfa_${randomToken(32)}`;
      const expiresAt = new Date(clock.now().getTime() + settings.challengeTtlSec * 1000);
      await db.mfaChallenges.insert(tx, { userId, tokenHash: sha256(token), firstFactor, expiresAt });
      return { token, expiresAt };
    },

    async verify(challengeToken, factor, client) {
      if (challengeToken === "") throw invalidField("challenge_token", "REQUIRED", "is required");
      const code = factor.kind === "totp" ? requireCode("totp_code", factor.code, TOTP_CODE) : requireCode("backup_code", factor.code, BACKUP_CODE);
      const tokenHash = sha256(challengeToken);
      // Whose challenge it is, read first: the shared limit is per account and comes before the
      // attempt is counted, so a limited call uses up nothing of the challenge.
      const ownerId = await db.mfaChallenges.findLiveOwner(db.direct, tokenHash, clock.now(), MAX_CHALLENGE_ATTEMPTS);
      if (ownerId === undefined) throw new AppError("MFA_CHALLENGE_INVALID", "mfa challenge unknown, expired, used or exhausted");
      const user = await db.users.findLive(db.direct, ownerId);
      if (!user || !user.mfaEnabledAt) throw new AppError("MFA_CHALLENGE_INVALID", "challenge account not eligible");
      // The shared MFA failure limit first (also for DisableTotp, RegenerateBackupCodes, ConfirmTotp).
      const outcome = await checks.secondFactor(user.id, factor.kind, client, { action: "verify_mfa" }, async () => {
        // The attempt is counted in its own statement (committed whatever the code), conditional
        // on the challenge still being live, so a wrong code uses one up even under concurrency.
        const challenge = await db.mfaChallenges.countAttempt(db.direct, tokenHash, user.id, clock.now(), MAX_CHALLENGE_ATTEMPTS);
        if (!challenge) throw new AppError("MFA_CHALLENGE_INVALID", "mfa challenge used or exhausted concurrently");
        return db.transaction(async (tx) => {
          const accepted = factor.kind === "totp" ? await totp.accept(tx, user.id, code, true) : await backupCodes.accept(tx, user.id, code);
          if (!accepted) return undefined;
          if (!(await db.mfaChallenges.consume(tx, challenge.id, clock.now()))) throw new AppError("MFA_CHALLENGE_INVALID", "challenge used concurrently");
          const amr = [...new Set([...challenge.firstFactor, factor.kind === "totp" ? "otp" : "kba", "mfa"])];
          const tokens = await sessionTokens.start(tx, user, amr, client);
          if (factor.kind === "backup") await audit.record({ userId: user.id, type: "BACKUP_CODE_USED", client, sessionId: tokens.sessionId }, tx);
          await audit.record({ userId: user.id, type: "LOGIN_SUCCEEDED", client, sessionId: tokens.sessionId, details: { method: amr.join("+") } }, tx);
          return tokens;
        });
      });
      if (!outcome) throw new AppError("MFA_CODE_INVALID", `wrong ${factor.kind} code for ${user.id}`);
      return { user, tokens: outcome };
    },
  };
}
