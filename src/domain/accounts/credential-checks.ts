// Every check of a secret the caller claims to know goes through here, whichever RPC asks for it:
// passwords (Login, ChangePassword, DeleteAccount, DisableTotp) and second-factor codes
// (VerifyMfa, ConfirmTotp, DisableTotp, RegenerateBackupCodes). Otherwise an access token alone
// would buy unlimited guesses on the RPCs that are not Login or VerifyMfa.
//
// One budget per kind of secret, whatever the RPC: a password check takes the login failure
// rules (login-limits.ts) keyed by the account and the client address, a code check takes the
// per-account MFA failure rule. The check takes its slot before anything is hashed or compared
// (a limited call is refused with RATE_LIMITED before the secret is looked at), a success gives
// the slot back, and a failure is audited (LOGIN_FAILED with a cause, MFA_FAILED with a method).
import type { LoginLimitConfig } from "../../config.js";
import type { Store, UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import { loginFailureRules } from "../limits/login-limits.js";
import type { PasswordHasher, VerifyResult } from "./passwords.js";
import type { RateLimits, RateRule } from "../limits/rate-limits.js";

/**
 * Wrong second-factor codes per account, across all its challenges, RPCs and instances: a
 * challenge allows 5 attempts, this caps how many challenges' worth an hour.
 */
export const MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR = 20;

export function mfaFailureRule(userId: string): RateRule {
  return { key: `mfa-fail:account:${userId}`, limit: MAX_MFA_FAILURES_PER_ACCOUNT_PER_HOUR, windowMs: 3_600_000 };
}

/** Longest password input hashed: argon2 of a megabyte is a denial of service, not a password. */
const MAX_PASSWORD_INPUT = 1024;

/** What the audit event of a failed check says: which RPC (cause/action) and session. */
export interface CheckContext {
  /** Why the secret was asked for, e.g. `change_password`; recorded on a failure. */
  readonly action: string;
  readonly sessionId?: string | null;
}

/** TOTP, backup code, or a one-time code sent to the email address or phone number. */
export type SecondFactorMethod = "totp" | "backup" | "email" | "sms";

/**
 * A login's outcome: `inactive` is set only when the password was right and the account is
 * disabled or deleted (the only case in which login says so).
 */
export interface LoginCheck extends VerifyResult {
  readonly inactive?: "disabled" | "deleted";
}

export interface CredentialChecks {
  /**
   * A password login: `user` is the account the identifier names (users.findForLogin: live,
   * disabled or deleted), or null (then the check still costs one hash and one audit row, so the
   * answer takes the same work either way). `subject` is loginSubject(...). Fails for a wrong
   * password and for an account not active; only in the second case is `inactive` set.
   */
  login(subject: string, user: UserRow | null, password: string, client: ClientMeta): Promise<LoginCheck>;
  /** The signed-in account's password, asked again before a sensitive change. */
  password(user: UserRow, password: string, client: ClientMeta, context: CheckContext): Promise<VerifyResult>;
  /**
   * A TOTP or backup code: `check` compares it (and may act on it in its transaction) and returns
   * undefined when the code is wrong.
   */
  secondFactor<T>(userId: string, method: SecondFactorMethod, client: ClientMeta, context: CheckContext, check: () => Promise<T | undefined>): Promise<T | undefined>;
}

export interface CredentialCheckDeps {
  /** The live-user rule (users.isLive). */
  readonly db: Pick<Store, "users">;
  readonly passwords: PasswordHasher;
  readonly limits: RateLimits;
  readonly audit: AuditLog;
  readonly loginLimits: LoginLimitConfig;
}

export function createCredentialChecks({ db, passwords, limits, audit, loginLimits }: CredentialCheckDeps): CredentialChecks {
  /**
   * Takes a slot of `rules`, runs `check`, and gives the slot back unless `failure` says the
   * outcome is a failed guess, which is audited instead. A check that throws (hashing queue
   * full, database gone) was no guess: its slot is given back.
   */
  async function guarded<T>(rules: readonly RateRule[], check: () => Promise<T>, failure: (outcome: T) => Promise<void> | undefined): Promise<T> {
    const reservation = await limits.take(rules);
    let outcome: T;
    try {
      outcome = await check();
    } catch (err) {
      await limits.refund(reservation);
      throw err;
    }
    const recording = failure(outcome);
    if (recording) await recording;
    else await limits.refund(reservation);
    return outcome;
  }

  // The client address lets the hashing queue admit clients fairly (passwords.ts).
  const verify = (hash: string | null, password: string, client: ClientMeta) => passwords.verify(hash, password.slice(0, MAX_PASSWORD_INPUT), client.ip);

  return {
    async login(subject, user, password, client) {
      const result = await guarded(
        loginFailureRules(subject, client.ip, loginLimits),
        () => verify(user?.passwordHash ?? null, password, client),
        (r) => {
          if (user && r.ok && db.users.isLive(user)) return undefined;
          // Recorded for an unknown identifier too (no account, no identifier stored): the same
          // statements as for a wrong password, so the answer's timing does not tell them apart.
          const cause = !user ? "unknown_identifier" : !r.ok ? "wrong_password" : user.deletedAt !== null ? "account_deleted" : "account_disabled";
          return audit.record({ userId: user?.id ?? null, type: "LOGIN_FAILED", client, details: { method: "pwd", cause } });
        },
      );
      if (user && result.ok && db.users.isLive(user)) return result;
      // Said only after the right password: a wrong one answers as for an unknown account.
      if (user && result.ok) return { ok: false, needsRehash: false, inactive: user.deletedAt !== null || user.status === "deleted" ? "deleted" : "disabled" };
      return { ok: false, needsRehash: false };
    },

    password(user, password, client, context) {
      return guarded(
        loginFailureRules(`user:${user.id}`, client.ip, loginLimits),
        () => verify(user.passwordHash, password, client),
        (r) =>
          r.ok
            ? undefined
            : audit.record({ userId: user.id, type: "LOGIN_FAILED", client, sessionId: context.sessionId ?? null, details: { method: "pwd", cause: context.action } }),
      );
    },

    secondFactor(userId, method, client, context, check) {
      return guarded([mfaFailureRule(userId)], check, (outcome) =>
        outcome !== undefined
          ? undefined
          : audit.record({ userId, type: "MFA_FAILED", client, sessionId: context.sessionId ?? null, details: { method, action: context.action } }),
      );
    },
  };
}

