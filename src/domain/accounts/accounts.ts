// Accounts: sign-up, password sign-in, password change, deletion.
import { UniqueViolationError, type Store, type UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { AppError, Violations, invalidField } from "../errors.js";
import { normalizeEmail, normalizePhone, normalizeUsername, parseIdentifier } from "./identifiers.js";
import { checkPassword, type PasswordHasher } from "./passwords.js";
import { checkProfile, type ProfileRules } from "./profile.js";
import type { SessionTokens, TokenPair } from "../sessions/session-tokens.js";
import type { Sessions } from "../sessions/sessions.js";
import type { Revocations } from "../tokens/revocation.js";
import type { SignIn, SignInResult } from "../sessions/sign-in.js";
import type { SignUpLimitConfig } from "../../config.js";
import { loginSubject } from "../limits/login-limits.js";
import { clientAddressKey, type RateLimits } from "../limits/rate-limits.js";
import type { CredentialChecks } from "./credential-checks.js";
import { endPendingProofs, type CredentialChangeDb } from "./credential-changes.js";
import { requireLiveUser } from "./live-user.js";

export interface SignUpInput {
  readonly email: string;
  readonly username: string;
  readonly phone: string;
  readonly password: string;
  readonly displayName: string;
  /** The optional attributes (profile.ts); absent is empty. */
  readonly givenName?: string;
  readonly familyName?: string;
  readonly country?: string;
  readonly birthDate?: string;
}

export interface SignedIn {
  readonly user: UserRow;
  readonly tokens: TokenPair;
}


export interface Accounts {
  signUp(input: SignUpInput, client: ClientMeta): Promise<SignedIn>;
  login(identifier: string, password: string, client: ClientMeta): Promise<{ user: UserRow; result: SignInResult }>;
  get(userId: string): Promise<UserRow>;
  changePassword(caller: Caller, currentPassword: string, newPassword: string, client: ClientMeta): Promise<number>;
  delete(caller: Caller, password: string, client: ClientMeta): Promise<void>;
}

/** What accounts need of the store. */
export type AccountsDb = Pick<Store, "transaction" | "direct"> & CredentialChangeDb;

export interface AccountDeps {
  readonly db: AccountsDb;
  readonly clock: Clock;
  readonly passwords: PasswordHasher;
  readonly sessions: Sessions;
  readonly sessionTokens: SessionTokens;
  readonly signIn: SignIn;
  readonly audit: AuditLog;
  readonly revocations: Revocations;
  readonly limits: RateLimits;
  /** Every password check (login, change, delete) within the shared failure limits, audited. */
  readonly checks: CredentialChecks;
  readonly signUpLimits: SignUpLimitConfig;
  /** MIN_AGE and REQUIRED_PROFILE_FIELDS. */
  readonly profileRules: ProfileRules;
  /** The highest of ROLES: its last live holder cannot delete their own account (LAST_OWNER). */
  readonly highestRole: string;
}

const HOUR_MS = 3_600_000;

export function createAccounts({ db, clock, passwords, sessions, sessionTokens, signIn, audit, revocations, limits, checks, signUpLimits, profileRules, highestRole }: AccountDeps): Accounts {
  const liveUser = (userId: string) => requireLiveUser(db, userId);

  return {
    async signUp(input, client) {
      const violations = new Violations();
      const email = input.email.trim() === "" ? null : normalizeEmail(input.email);
      const username = input.username.trim() === "" ? null : normalizeUsername(input.username);
      const phone = input.phone.trim() === "" ? null : normalizePhone(input.phone);
      if (email === undefined) violations.add("email", "INVALID_EMAIL", "is not an email address");
      if (username === undefined) {
        violations.add("username", "INVALID_USERNAME", "must be 3 to 32 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit");
      }
      if (phone === undefined) violations.add("phone", "INVALID_PHONE", "is not a valid phone number in E.164 form (+14155550123)");
      if (email === null && username === null && phone === null) {
        violations.add("email", "IDENTIFIER_REQUIRED", "one of email, username or phone is required");
      }
      const passwordViolation = checkPassword("password", input.password);
      if (passwordViolation) violations.add(passwordViolation.field, passwordViolation.reason, passwordViolation.description);
      // The username was checked above, as an identifier; names, country and birth date here.
      const profile = checkProfile(
        violations,
        { display_name: input.displayName, username: "", given_name: input.givenName ?? "", family_name: input.familyName ?? "", country: input.country ?? "", birth_date: input.birthDate ?? "" },
        ["display_name", "given_name", "family_name", "country", "birth_date"],
        profileRules,
        clock.now(),
      );
      violations.throwIfAny();

      // Limits before the hash: every sign-up counts, whatever its outcome, and one that is
      // refused costs no argon2 time (hashing is shared with everyone's logins).
      await limits.take([
        { key: `sign-up:ip:${clientAddressKey(client.ip)}`, limit: signUpLimits.maxPerIpPerHour, windowMs: HOUR_MS },
        { key: "sign-up:global", limit: signUpLimits.maxPerHour, windowMs: HOUR_MS },
      ]);
      const passwordHash = await passwords.hash(input.password, client.ip);
      try {
        return await db.transaction(async (tx) => {
          const user = await db.users.insert(tx, {
            email: email ?? null,
            username: username ?? null,
            phone: phone ?? null,
            displayName: profile.displayName ?? "",
            givenName: profile.givenName ?? "",
            familyName: profile.familyName ?? "",
            country: profile.country ?? null,
            birthDate: profile.birthDate ?? null,
            passwordHash,
          });
          const tokens = await sessionTokens.start(tx, user, ["pwd"], client);
          await audit.record({ userId: user.id, type: "SIGN_UP", client, sessionId: tokens.sessionId, details: { method: "pwd" } }, tx);
          return { user, tokens };
        });
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError("IDENTIFIER_TAKEN", "email, username or phone already in use", { cause: err });
        throw err;
      }
    },

    async login(identifierText, password, client) {
      const violations = new Violations();
      if (identifierText.trim() === "") violations.add("identifier", "REQUIRED", "is required");
      if (password === "") violations.add("password", "REQUIRED", "is required");
      const identifier = identifierText.trim() === "" ? undefined : parseIdentifier(identifierText);
      // No account can have it (say, a zero-width or fullwidth character in it): saying so tells nothing about accounts.
      if (identifierText.trim() !== "" && !identifier) {
        violations.add("identifier", "INVALID_IDENTIFIER", "is not valid");
      }
      violations.throwIfAny();

      // Live, disabled, or (when no account that is not deleted has the identifier) the newest
      // deleted one: checks.login tells them apart only after the right password.
      const user = identifier ? await db.users.findForLogin(db.direct, identifier.kind, identifier.value) : null;
      // Failure limits (login-limits.ts) first; an unknown account still costs one hash and one
      // audit row, so neither the answer nor its timing tells whether the account exists.
      const result = await checks.login(loginSubject(user?.id, identifier, identifierText), user, password, client);
      if (user && result.inactive === "deleted") throw new AppError("ACCOUNT_DELETED", `right password for deleted account ${user.id}`);
      if (user && result.inactive === "disabled") throw new AppError("ACCOUNT_DISABLED", `right password for disabled account ${user.id}`);
      if (!user || !result.ok) {
        throw new AppError("INVALID_CREDENTIALS", user ? `login failed for ${user.id}` : "login failed for unknown identifier");
      }
      if (result.needsRehash) {
        await db.users.rehashPassword(db.direct, user.id, await passwords.hash(password, client.ip));
      }
      return db.transaction(async (tx) => {
        const result = await signIn.complete(tx, user, ["pwd"], client);
        // With MFA the sign-in succeeds only at VerifyMfa, which records it.
        if (result.kind === "tokens") {
          await audit.record({ userId: user.id, type: "LOGIN_SUCCEEDED", client, sessionId: result.tokens.sessionId, details: { method: "pwd" } }, tx);
        }
        return { user, result };
      });
    },

    get: liveUser,

    async changePassword(caller, currentPassword, newPassword, client) {
      const violations = new Violations();
      if (currentPassword === "") violations.add("current_password", "REQUIRED", "is required");
      const passwordViolation = checkPassword("new_password", newPassword);
      if (passwordViolation) violations.add(passwordViolation.field, passwordViolation.reason, passwordViolation.description);
      violations.throwIfAny();

      const user = await liveUser(caller.userId);
      // The failure limits before any hash; the new password is hashed only after the current one checked out.
      const result = await checks.password(user, currentPassword, client, { action: "change_password", sessionId: caller.sessionId });
      if (!result.ok || user.passwordHash === null) throw new AppError("WRONG_PASSWORD", `wrong current password for ${user.id}`);
      const passwordHash = await passwords.hash(newPassword, client.ip);
      const expectedHash = user.passwordHash;
      return db.transaction(async (tx) => {
        // Conditional on the hash the current password was checked against: of concurrent changes
        // with the same current password exactly one wins; the others find it changed and fail.
        if (!(await db.users.changePassword(tx, user.id, passwordHash, expectedHash, clock.now()))) {
          throw new AppError("WRONG_PASSWORD", `password of ${user.id} changed concurrently`);
        }
        // A challenge won with the old password, or a reset code sent before, must not outlive it.
        await endPendingProofs(db, tx, user.id);
        const ended = await sessions.revokeAll(user.id, "password_changed", caller.sessionId, tx);
        await audit.record({ userId: user.id, type: "PASSWORD_CHANGED", client, sessionId: caller.sessionId, details: { ended_sessions: String(ended) } }, tx);
        return ended;
      });
    },

    async delete(caller, password, client) {
      const user = await liveUser(caller.userId);
      if (user.passwordHash !== null) {
        if (password === "") {
          throw invalidField("password", "REQUIRED", "is required");
        }
        const result = await checks.password(user, password, client, { action: "delete_account", sessionId: caller.sessionId });
        if (!result.ok) throw new AppError("WRONG_PASSWORD", `wrong password deleting ${user.id}`);
      }
      await db.transaction(async (tx) => {
        const now = clock.now();
        if (!(await db.users.markDeleted(tx, user.id, now, highestRole))) {
          throw new AppError("LAST_OWNER", `${user.id} is the last active holder of ${highestRole}`);
        }
        await sessions.revokeAll(user.id, "account_deleted", undefined, tx);
        await audit.record({ userId: user.id, type: "ACCOUNT_DELETED", client, sessionId: caller.sessionId }, tx);
        revocations.userTokensInvalidated(user.id, now, "deleted");
      });
    },
  };
}
