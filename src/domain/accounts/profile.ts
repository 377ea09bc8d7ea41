// The profile: display name, username and the optional attributes (given and family name,
// country, birth date), checked the same way at sign-up and by UpdateProfile (AIP-134 masks).
import type { ProfileConfig, RequirableProfileField } from "../../config.js";
import { UniqueViolationError, type ProfileValues, type Store, type UserRow } from "../../store/index.js";
import type { AuditLog, ClientMeta } from "../audit/audit.js";
import type { Caller } from "../callers/callers.js";
import type { Clock } from "../clock.js";
import { AppError, Violations } from "../errors.js";
import { normalizeCountry } from "./countries.js";
import { normalizeUsername } from "./identifiers.js";
import { requireLiveUser } from "./live-user.js";
import { hasControlCharacters } from "./text.js";

export const MAX_NAME_LENGTH = 100;
/** Older birth dates are typing mistakes, not people. */
const EARLIEST_BIRTH_YEAR = 1900;

/** The fields of the proto's Profile message, by their proto names (what masks and violations say). */
export const PROFILE_FIELDS = ["display_name", "username", "given_name", "family_name", "country", "birth_date"] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];

/** Fields of the account that UpdateProfile cannot set: a path naming one is refused as immutable. */
const NOT_UPDATABLE: Readonly<Record<string, string>> = {
  id: "never changes",
  email: "changes with ChangeEmail",
  email_verified: "follows the email address",
  phone: "changes with ChangePhone",
  phone_verified: "follows the phone number",
  role: "is not set by the account's owner",
  mfa_enabled: "changes with MfaService",
  has_password: "changes with ChangePassword",
  create_time: "never changes",
};

/** The raw values a request gives, by field. */
export type ProfileInput = Readonly<Record<ProfileField, string>>;

const KEY: Readonly<Record<ProfileField, keyof ProfileValues>> = {
  display_name: "displayName",
  username: "username",
  given_name: "givenName",
  family_name: "familyName",
  country: "country",
  birth_date: "birthDate",
};

/** MIN_AGE and REQUIRED_PROFILE_FIELDS (config.ts). */
export type ProfileRules = ProfileConfig;

/**
 * A name as stored (NFKC, trimmed); adds a violation when it has control, bidi or zero-width
 * characters or is too long. Names end up in logs, terminals, mails and other people's screens.
 */
export function checkName(violations: Violations, field: string, raw: string): string {
  const name = raw.normalize("NFKC").trim();
  if (hasControlCharacters(raw)) {
    violations.add(field, "INVALID_CHARACTERS", "must not contain control, invisible formatting or line-break characters");
  } else if ([...name].length > MAX_NAME_LENGTH) {
    violations.add(field, "TOO_LONG", `must be at most ${MAX_NAME_LENGTH} characters`);
  }
  return name;
}

/** Today's date in UTC as [year, month, day]. */
function utcDate(now: Date): [number, number, number] {
  return [now.getUTCFullYear(), now.getUTCMonth() + 1, now.getUTCDate()];
}

/**
 * A birth date `YYYY-MM-DD`: a real calendar date (no 2023-02-29), from 1900 on, not after
 * today (UTC), and at least `minAge` full years ago when minAge > 0. Adds a violation otherwise.
 */
export function checkBirthDate(violations: Violations, field: string, raw: string, now: Date, minAge: number): string | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw.trim());
  const [y, m, d] = match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [0, 0, 0];
  const date = new Date(Date.UTC(y, m - 1, d));
  if (!match || date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) {
    violations.add(field, "INVALID_DATE", "must be a date as YYYY-MM-DD");
    return null;
  }
  if (y < EARLIEST_BIRTH_YEAR) {
    violations.add(field, "INVALID_DATE", `must be on or after ${EARLIEST_BIRTH_YEAR}-01-01`);
    return null;
  }
  const [ty, tm, td] = utcDate(now);
  if (y * 10_000 + m * 100 + d > ty * 10_000 + tm * 100 + td) {
    violations.add(field, "FUTURE_DATE", "must not be in the future");
    return null;
  }
  // Full years: the birthday of this year not reached yet takes one off (29 February counts from 1 March).
  const age = ty - y - (tm * 100 + td < m * 100 + d ? 1 : 0);
  if (minAge > 0 && age < minAge) {
    violations.add(field, "TOO_YOUNG", `must be at least ${minAge} years ago`);
    return null;
  }
  return match[0];
}

/**
 * Checks the given fields of `input`, adding a violation per bad field; returns their values as
 * stored ("" for an empty name, null for an empty username, country or birth date). A required
 * field (REQUIRED_PROFILE_FIELDS) may not be empty.
 */
export function checkProfile(violations: Violations, input: ProfileInput, fields: readonly ProfileField[], rules: ProfileRules, now: Date): Partial<ProfileValues> {
  const values: Record<string, string | null> = {};
  for (const field of fields) {
    const raw = input[field];
    if (raw.trim() === "") {
      if (field !== "username" && rules.requiredFields.has(field as RequirableProfileField)) violations.add(field, "REQUIRED", "is required");
      values[KEY[field]] = field === "display_name" || field === "given_name" || field === "family_name" ? "" : null;
      continue;
    }
    switch (field) {
      case "display_name":
      case "given_name":
      case "family_name":
        values[KEY[field]] = checkName(violations, field, raw);
        break;
      case "username": {
        const username = normalizeUsername(raw);
        if (username === undefined) violations.add(field, "INVALID_USERNAME", "must be 3 to 32 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit");
        values.username = username ?? null;
        break;
      }
      case "country": {
        const country = normalizeCountry(raw);
        if (country === undefined) violations.add(field, "INVALID_COUNTRY", "must be an ISO 3166-1 alpha-2 country code, such as DE");
        values.country = country ?? null;
        break;
      }
      case "birth_date":
        values.birthDate = checkBirthDate(violations, field, raw, now, rules.minAge);
        break;
    }
  }
  return values as Partial<ProfileValues>;
}

/**
 * The fields an update mask names (AIP-134): its paths, or `*` for all; without paths, every
 * field given a non-empty value. Adds a violation per path that names no field, or one that
 * UpdateProfile cannot change.
 */
export function maskedFields(violations: Violations, input: ProfileInput, paths: readonly string[]): ProfileField[] {
  if (paths.length === 0) return PROFILE_FIELDS.filter((field) => input[field] !== "");
  if (paths.includes("*")) {
    if (paths.length > 1) violations.add("update_mask", "INVALID_PATH", "`*` cannot be combined with other paths");
    return [...PROFILE_FIELDS];
  }
  const fields = new Set<ProfileField>();
  for (const path of paths) {
    if ((PROFILE_FIELDS as readonly string[]).includes(path)) fields.add(path as ProfileField);
    else if (Object.hasOwn(NOT_UPDATABLE, path)) violations.add("update_mask", "IMMUTABLE_FIELD", `${path} ${NOT_UPDATABLE[path]}`);
    else violations.add("update_mask", "UNKNOWN_FIELD", `${path.slice(0, 64)} is not a field of Profile`);
  }
  return [...fields];
}

export interface Profiles {
  /** UpdateProfile: the account as it is after the change. */
  update(caller: Caller, input: ProfileInput, maskPaths: readonly string[], client: ClientMeta): Promise<UserRow>;
}

export interface ProfileDeps {
  readonly db: Pick<Store, "transaction" | "direct" | "users">;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly rules: ProfileRules;
}

export function createProfiles({ db, clock, audit, rules }: ProfileDeps): Profiles {
  return {
    async update(caller, input, maskPaths, client) {
      const violations = new Violations();
      const fields = maskedFields(violations, input, maskPaths);
      if (violations.empty && fields.length === 0) violations.add("update_mask", "REQUIRED", "names no field to change, and the profile gives no value");
      const changes = checkProfile(violations, input, fields, rules, clock.now());
      const user = await requireLiveUser(db, caller.userId);
      // The username is one of the identifiers the account is found by: it may go only while another stays.
      if (fields.includes("username") && changes.username === null && user.email === null && user.phone === null) {
        violations.add("username", "REQUIRED", "is the account's only identifier");
      }
      violations.throwIfAny();
      try {
        return await db.transaction(async (tx) => {
          const updated = await db.users.updateProfile(tx, user.id, changes, clock.now());
          if (!updated) throw new AppError("ACCESS_TOKEN_INVALID", `account ${user.id} is not active`);
          await audit.record({ userId: user.id, type: "PROFILE_UPDATED", client, sessionId: caller.sessionId, details: { fields: fields.join(",") } }, tx);
          return updated;
        });
      } catch (err) {
        if (err instanceof UniqueViolationError) throw new AppError("IDENTIFIER_TAKEN", "username already in use", { cause: err });
        throw err;
      }
    },
  };
}
