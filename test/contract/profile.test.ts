// Issue 16: profile attributes at sign-up and AuthService.UpdateProfile (AIP-134 masks) over every
// transport, each refusal with the stored data unchanged.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ManualClock } from "../../src/domain/clock.js";
import { auditRows, bearer, login, PASSWORD, signUp, uniqueEmail, uniquePhone, uniqueUsername, violationReasons } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { setupService } from "../support/setup.js";
import { transportNames } from "../support/transports.js";

// 2026-03-01: someone born 2013-03-01 has just turned 13; born 2013-03-02, not yet.
const clock = new ManualClock(new Date("2026-03-01T10:00:00Z"));
const t = setupService({ clock });

async function userRow(userId: string) {
  const [row] = (await t.db.query(
    `SELECT display_name, username, given_name, family_name, country, to_char(birth_date, 'YYYY-MM-DD') AS birth_date FROM users WHERE id = $1`,
    [userId],
  )) as Array<Record<string, string | null>>;
  return row!;
}

describe.each(transportNames)("profile attributes and UpdateProfile over %s", (name) => {
  const { auth } = t.clients(name);

  it("SignUp stores the attributes (country upper-cased) and WhoAmI returns the whole profile", async () => {
    const account = await signUp(auth, "attrs", { displayName: "Ada L.", givenName: " Ada ", familyName: "Lovelace", country: "gb", birthDate: "1990-12-10" } as never);
    const { user } = await auth.whoAmI({}, bearer(account.tokens.accessToken));
    expect(user).toMatchObject({ displayName: "Ada L.", givenName: "Ada", familyName: "Lovelace", country: "GB", birthDate: "1990-12-10" });
    expect(await userRow(account.userId)).toMatchObject({ given_name: "Ada", country: "GB", birth_date: "1990-12-10" });
    // Optional by default: none given, none stored.
    const bare = await signUp(auth, "bare");
    expect((await auth.whoAmI({}, bearer(bare.tokens.accessToken))).user).toMatchObject({ givenName: "", familyName: "", country: "", birthDate: "" });
  });

  it("SignUp refuses every bad attribute with one violation per field and stores nothing", async () => {
    const error = await t.expectNothingStored(() =>
      expectError(
        auth.signUp({
          email: uniqueEmail("bad-attrs"),
          password: PASSWORD,
          givenName: "Ada\u202Eevil",
          familyName: "x".repeat(101),
          country: "ZZ",
          birthDate: "2023-02-29",
        }),
        { code: Code.InvalidArgument, fields: ["given_name", "family_name", "country", "birth_date"] },
      ),
    );
    expect(violationReasons(error)).toEqual({ given_name: "INVALID_CHARACTERS", family_name: "TOO_LONG", country: "INVALID_COUNTRY", birth_date: "INVALID_DATE" });
    for (const [country, birthDate, reason] of [["EU", "2026-03-02", "FUTURE_DATE"], ["UK", "1899-12-31", "INVALID_DATE"], ["XK", "26-03-01", "INVALID_DATE"]] as const) {
      const refused = await t.expectNothingStored(() =>
        expectError(auth.signUp({ email: uniqueEmail("bad-attrs"), password: PASSWORD, country, birthDate }), { code: Code.InvalidArgument, fields: ["country", "birth_date"] }),
      );
      expect(violationReasons(refused)).toEqual({ country: "INVALID_COUNTRY", birth_date: reason });
    }
  });

  it("UpdateProfile sets the masked fields, clears a masked empty one, and audits what changed", async () => {
    const account = await signUp(auth, "update", { givenName: "Ada", country: "DE" } as never);
    const { user } = await auth.updateProfile(
      { profile: { displayName: "Countess", familyName: "Lovelace", country: "", givenName: "ignored" }, updateMask: { paths: ["display_name", "family_name", "country"] } },
      bearer(account.tokens.accessToken),
    );
    expect(user).toMatchObject({ id: account.userId, email: account.email, displayName: "Countess", givenName: "Ada", familyName: "Lovelace", country: "" });
    expect(await userRow(account.userId)).toMatchObject({ display_name: "Countess", given_name: "Ada", family_name: "Lovelace", country: null });
    const updated = (await auditRows(t.db, account.userId)).filter((e) => e.type === "PROFILE_UPDATED");
    expect(updated).toEqual([{ type: "PROFILE_UPDATED", session_id: account.tokens.sessionId, details: { fields: "display_name,family_name,country" } }]);
  });

  it("UpdateProfile without a mask sets every non-empty field and leaves the others (AIP-134)", async () => {
    const account = await signUp(auth, "nomask", { displayName: "Keep", givenName: "Keep too" } as never);
    await auth.updateProfile({ profile: { country: "fr", birthDate: "2000-01-31" } }, bearer(account.tokens.accessToken));
    expect(await userRow(account.userId)).toMatchObject({ display_name: "Keep", given_name: "Keep too", country: "FR", birth_date: "2000-01-31" });
    // `*` replaces all: what is not given is cleared.
    await auth.updateProfile({ profile: { displayName: "Only" }, updateMask: { paths: ["*"] } }, bearer(account.tokens.accessToken));
    expect(await userRow(account.userId)).toMatchObject({ display_name: "Only", given_name: "", country: null, birth_date: null, username: null });
  });

  it("UpdateProfile refuses unknown and immutable paths, bad values and an empty update, changing nothing", async () => {
    const account = await signUp(auth, "badmask");
    const auth_ = bearer(account.tokens.accessToken);
    await t.expectUnchanged(async () => {
      const paths = await expectError(auth.updateProfile({ profile: { displayName: "x" }, updateMask: { paths: ["display_name", "email", "favourite_colour"] } }, auth_), {
        code: Code.InvalidArgument,
        fields: ["update_mask", "update_mask"],
      });
      const reasons = paths.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.reason));
      expect(reasons).toEqual(["IMMUTABLE_FIELD", "UNKNOWN_FIELD"]);
      const values = await expectError(auth.updateProfile({ profile: { country: "QQ", birthDate: "2026-03-02", username: "-no" } }, auth_), {
        code: Code.InvalidArgument,
        fields: ["country", "birth_date", "username"],
      });
      expect(violationReasons(values)).toEqual({ country: "INVALID_COUNTRY", birth_date: "FUTURE_DATE", username: "INVALID_USERNAME" });
      await expectError(auth.updateProfile({ profile: {} }, auth_), { code: Code.InvalidArgument, fields: ["update_mask"] });
      await expectError(auth.updateProfile({ profile: { displayName: "x" } }), { code: Code.Unauthenticated, reason: "AUTHENTICATION_REQUIRED" });
    });
  });

  it("UpdateProfile sets a username as sign-up does: normalised, unique (IDENTIFIER_TAKEN), and the old one stops signing in", async () => {
    const holder = await signUp(auth, "holder", { username: uniqueUsername("held") });
    const holderName = (await auth.whoAmI({}, bearer(holder.tokens.accessToken))).user!.username;
    const account = await signUp(auth, "renamer", { username: uniqueUsername("before") });
    const before = (await auth.whoAmI({}, bearer(account.tokens.accessToken))).user!.username;
    await t.expectUnchanged(() =>
      expectError(auth.updateProfile({ profile: { username: holderName.toUpperCase() } }, bearer(account.tokens.accessToken)), {
        code: Code.AlreadyExists,
        reason: "IDENTIFIER_TAKEN",
      }),
    );
    const wanted = uniqueUsername("after");
    const { user } = await auth.updateProfile({ profile: { username: ` ${wanted.toUpperCase()} ` } }, bearer(account.tokens.accessToken));
    expect(user?.username).toBe(wanted);
    await login(auth, wanted);
    await expectError(auth.login({ identifier: before, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    // Removed while the account keeps its email address; the username is free again.
    await auth.updateProfile({ profile: {}, updateMask: { paths: ["username"] } }, bearer(account.tokens.accessToken));
    expect((await userRow(account.userId)).username).toBeNull();
  });

  it("UpdateProfile will not remove the username of an account found by nothing else", async () => {
    const only = await auth.signUp({ username: uniqueUsername("only"), password: PASSWORD });
    await t.expectUnchanged(async () => {
      const error = await expectError(auth.updateProfile({ profile: {}, updateMask: { paths: ["username"] } }, bearer(only.tokens!.accessToken)), {
        code: Code.InvalidArgument,
        fields: ["username"],
      });
      expect(violationReasons(error)).toEqual({ username: "REQUIRED" });
    });
    const withPhone = await auth.signUp({ username: uniqueUsername("phoned"), phone: uniquePhone(), password: PASSWORD });
    expect((await auth.updateProfile({ profile: {}, updateMask: { paths: ["username"] } }, bearer(withPhone.tokens!.accessToken))).user?.username).toBe("");
  });
});

describe("MIN_AGE and REQUIRED_PROFILE_FIELDS", () => {
  const strict = setupService({ clock, env: { MIN_AGE: "13", REQUIRED_PROFILE_FIELDS: "country,birth_date,given_name" } });

  describe.each(transportNames)("over %s", (name) => {
    const { auth } = strict.clients(name);

    it("SignUp refuses missing required attributes and the too young, storing nothing; 13 today is old enough", async () => {
      const missing = await strict.expectNothingStored(() =>
        expectError(auth.signUp({ email: uniqueEmail("req"), password: PASSWORD, familyName: "Only" }), { code: Code.InvalidArgument, fields: ["country", "birth_date", "given_name"] }),
      );
      expect(violationReasons(missing)).toEqual({ country: "REQUIRED", birth_date: "REQUIRED", given_name: "REQUIRED" });
      const young = await strict.expectNothingStored(() =>
        expectError(auth.signUp({ email: uniqueEmail("young"), password: PASSWORD, givenName: "Kid", country: "US", birthDate: "2013-03-02" }), {
          code: Code.InvalidArgument,
          fields: ["birth_date"],
        }),
      );
      expect(violationReasons(young)).toEqual({ birth_date: "TOO_YOUNG" });
      const ok = await auth.signUp({ email: uniqueEmail("thirteen"), password: PASSWORD, givenName: "Teen", country: "US", birthDate: "2013-03-01" });
      expect(ok.user).toMatchObject({ givenName: "Teen", country: "US", birthDate: "2013-03-01" });

      // A required attribute cannot be cleared; an optional one can.
      await strict.expectUnchanged(async () => {
        const error = await expectError(auth.updateProfile({ profile: {}, updateMask: { paths: ["country", "given_name"] } }, bearer(ok.tokens!.accessToken)), {
          code: Code.InvalidArgument,
          fields: ["country", "given_name"],
        });
        expect(violationReasons(error)).toEqual({ country: "REQUIRED", given_name: "REQUIRED" });
        await expectError(auth.updateProfile({ profile: { birthDate: "2014-01-01" } }, bearer(ok.tokens!.accessToken)), { code: Code.InvalidArgument, fields: ["birth_date"] });
      });
      expect((await auth.updateProfile({ profile: {}, updateMask: { paths: ["family_name"] } }, bearer(ok.tokens!.accessToken))).user?.familyName).toBe("");
    });
  });
});
