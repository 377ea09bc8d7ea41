// The MFA challenge: the half-finished sign-in a first factor leaves for an account with a
// second factor. VerifyMfa turns it into a session with a TOTP, backup, email or SMS code;
// SendMfaCode sends the email or SMS code (code-factors.ts).
//
// One address is never both factors: a one-time-code sign-in (`amr` otp + email, or otp + sms)
// leaves a challenge that does not offer a code to that channel, and a code for a challenge is
// stored under its own purpose (`mfa`) and bound to the challenge, so neither the sign-in code
// nor a code sent for another challenge answers it.
import type { Store, Tx, UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Clock } from "../clock.js";
import type { CredentialChecks } from "../accounts/credential-checks.js";
import type { OtpChannel } from "../accounts/contacts.js";
import { randomToken, sha256 } from "../crypto.js";
import { AppError, invalidField } from "../errors.js";
import type { OtpCodes, OtpFailure } from "../otp/codes.js";
import type { SessionTokens, TokenPair } from "../sessions/session-tokens.js";
import type { BackupCodes } from "./backup-codes.js";
import { BACKUP_CODE, requireCode, TOTP_CODE } from "./codes.js";
import type { Challenge, MfaMethodName, MfaSettings, SecondFactor } from "./types.js";
import type { Totp } from "./totp.js";

export const MAX_CHALLENGE_ATTEMPTS = 5;

const SIX_DIGITS = /^\d{6}$/;

export interface LiveChallenge {
  readonly user: UserRow;
  readonly tokenHash: Buffer;
  /** What the challenge may be answered with now. */
  readonly methods: readonly MfaMethodName[];
}

export interface Challenges {
  create(tx: Tx, user: UserRow, firstFactor: readonly string[]): Promise<Challenge | undefined>;
  /** The live challenge `challengeToken` names; MFA_CHALLENGE_INVALID when there is none. */
  find(challengeToken: string): Promise<LiveChallenge>;
  verify(challengeToken: string, factor: SecondFactor, client: ClientMeta): Promise<{ user: UserRow; tokens: TokenPair }>;
}

export interface ChallengeDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users" | "mfaChallenges" | "mfaCodeFactors">;
  readonly clock: Clock;
  readonly settings: MfaSettings;
  readonly totp: Totp;
  readonly backupCodes: BackupCodes;
  readonly otpCodes: OtpCodes;
  readonly sessionTokens: SessionTokens;
  readonly audit: AuditLog;
  readonly checks: CredentialChecks;
}

/** The binding of a challenge's codes (OtpCodes.store): its token hash, which only its holder can name. */
export function challengeBinding(tokenHash: Buffer): string {
  return `mfa-challenge:${tokenHash.toString("hex")}`;
}

/** The account's address on a code factor's channel, as codes are keyed and sent. */
export function factorContact(user: UserRow, channel: OtpChannel): { channel: OtpChannel; address: string; key: string } {
  const address = channel === "email" ? user.email : user.phone;
  if (address === null) throw new AppError("MFA_METHOD_UNAVAILABLE", `${user.id} has no ${channel} address`);
  return { channel, address, key: address };
}

/** What answers a challenge of `user` after `firstFactor`: its factors, but a code to the first factor's channel. */
export async function challengeMethods(db: Pick<Store, "mfaCodeFactors">, tx: Tx, user: UserRow, firstFactor: readonly string[]): Promise<{ all: MfaMethodName[]; offered: MfaMethodName[] }> {
  const all: MfaMethodName[] = user.mfaEnabledAt !== null ? ["totp", "backup"] : [];
  all.push(...(await db.mfaCodeFactors.usable(tx, user.id)));
  // A one-time-code first factor records its channel in amr (otp/login.ts otpAmr).
  const offered = all.filter((m) => !((m === "email" || m === "sms") && firstFactor.includes(m)));
  return { all, offered };
}

export function createChallenges({ db, clock, settings, totp, backupCodes, otpCodes, sessionTokens, audit, checks }: ChallengeDeps): Challenges {
  async function find(challengeToken: string): Promise<LiveChallenge> {
    if (challengeToken === "") throw invalidField("challenge_token", "REQUIRED", "is required");
    const tokenHash = sha256(challengeToken);
    const live = await db.mfaChallenges.findLive(db.direct, tokenHash, clock.now(), MAX_CHALLENGE_ATTEMPTS);
    if (live === undefined) throw new AppError("MFA_CHALLENGE_INVALID", "mfa challenge unknown, expired, used or exhausted");
    const user = await db.users.findLive(db.direct, live.userId);
    if (!user) throw new AppError("MFA_CHALLENGE_INVALID", "challenge account not eligible");
    const { all, offered } = await challengeMethods(db, db.direct, user, live.firstFactor);
    if (all.length === 0) throw new AppError("MFA_CHALLENGE_INVALID", "challenge account has no second factor left");
    return { user, tokenHash, methods: offered };
  }

  return {
    async create(tx, user, firstFactor) {
      const { all, offered } = await challengeMethods(db, tx, user, firstFactor);
      if (all.length === 0) return undefined;
      // The account's only second factors are codes to the address just proven: asking for one
      // would let one address be both factors.
      if (offered.length === 0) throw new AppError("MFA_METHOD_UNAVAILABLE", `${user.id} has no second factor but the first one (${firstFactor.join("+")})`);
      const token = `mfa_${randomToken(32)}`;
      const expiresAt = new Date(clock.now().getTime() + settings.challengeTtlSec * 1000);
      await db.mfaChallenges.insert(tx, { userId: user.id, tokenHash: sha256(token), firstFactor, expiresAt });
      return { token, expiresAt, methods: offered };
    },

    find,

    async verify(challengeToken, factor, client) {
      if (challengeToken === "") throw invalidField("challenge_token", "REQUIRED", "is required");
      const field = `${factor.kind === "backup" ? "backup" : factor.kind}_code`;
      const code = requireCode(field, factor.code, factor.kind === "backup" ? BACKUP_CODE : factor.kind === "totp" ? TOTP_CODE : SIX_DIGITS);
      // Whose challenge it is, read first: the shared limit is per account and comes before the
      // attempt is counted, so a limited call uses up nothing of the challenge.
      const { user, tokenHash, methods } = await find(challengeToken);
      if (!methods.includes(factor.kind)) throw new AppError("MFA_METHOD_UNAVAILABLE", `${factor.kind} does not answer this challenge of ${user.id}`);
      let codeFailure: OtpFailure | undefined;
      // The shared MFA failure limit first (also for DisableTotp, RegenerateBackupCodes, ConfirmTotp).
      const outcome = await checks.secondFactor(user.id, factor.kind, client, { action: "verify_mfa" }, async () => {
        // The attempt is counted in its own statement (committed whatever the code), conditional
        // on the challenge still being live, so a wrong code uses one up even under concurrency.
        const challenge = await db.mfaChallenges.countAttempt(db.direct, tokenHash, user.id, clock.now(), MAX_CHALLENGE_ATTEMPTS);
        if (!challenge) throw new AppError("MFA_CHALLENGE_INVALID", "mfa challenge used or exhausted concurrently");
        return db.transaction(async (tx) => {
          let accepted: boolean;
          if (factor.kind === "totp") accepted = await totp.accept(tx, user.id, code, true);
          else if (factor.kind === "backup") accepted = await backupCodes.accept(tx, user.id, code);
          else {
            // One conditional UPDATE (store: otpCodes.consume): of concurrent right codes one spends it.
            const consumed = await otpCodes.consume(tx, factorContact(user, factor.kind), "mfa", code, challengeBinding(tokenHash));
            accepted = consumed.ok && consumed.userId === user.id;
            if (!consumed.ok) codeFailure = consumed.reason;
          }
          if (!accepted) return undefined;
          if (!(await db.mfaChallenges.consume(tx, challenge.id, clock.now()))) throw new AppError("MFA_CHALLENGE_INVALID", "challenge used concurrently");
          const second = factor.kind === "totp" ? ["otp"] : factor.kind === "backup" ? ["kba"] : ["otp", factor.kind];
          const amr = [...new Set([...challenge.firstFactor, ...second, "mfa"])];
          const tokens = await sessionTokens.start(tx, user, amr, client);
          if (factor.kind === "backup") await audit.record({ userId: user.id, type: "BACKUP_CODE_USED", client, sessionId: tokens.sessionId }, tx);
          await audit.record({ userId: user.id, type: "LOGIN_SUCCEEDED", client, sessionId: tokens.sessionId, details: { method: amr.join("+") } }, tx);
          return tokens;
        });
      });
      if (outcome) return { user, tokens: outcome };
      // An expired or exhausted code tells the client to ask for a new one, as at VerifyOtp.
      if (codeFailure === "OTP_EXPIRED" || codeFailure === "OTP_ATTEMPTS_EXHAUSTED") throw new AppError(codeFailure, `${factor.kind} code for ${user.id}: ${codeFailure}`);
      throw new AppError("MFA_CODE_INVALID", `wrong ${factor.kind} code for ${user.id}`);
    },
  };
}
