// AuthService.SignUp over every transport: identifier variants, field validation, password
// rules (code points after NFKC, common passwords) and duplicates.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { auditRows, violationReasons as reasons, login, PASSWORD, uniqueEmail, uniquePhone, uniqueUsername } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("SignUp over %s", (name) => {
  const { auth } = t.clients(name);

  it("creates an account by email, stores an argon2id hash and signs it in", async () => {
    const typed = uniqueEmail("Sign.Up");
    const email = typed.toLowerCase(); // the canonical form: an ASCII address is lower-cased
    const mixedCase = `  ${typed.replace("example.com", "EXAMPLE.com")} `;
    const { user, tokens } = await auth.signUp({ email: mixedCase, password: PASSWORD, displayName: " Ａda " });
    expect(user).toMatchObject({ email, username: "", phone: "", displayName: "Ada", role: "user", hasPassword: true, emailVerified: false });
    expect(tokens?.tokenType).toBe("Bearer");
    const verified = await t.verify(tokens!.accessToken);
    expect(verified).toMatchObject({ active: true, userId: user!.id, sessionId: tokens!.sessionId, role: "user", amr: ["pwd"] });

    const [row] = await t.db.query(`SELECT email, status, password_hash FROM users WHERE id = $1`, [user!.id]);
    expect(row.email).toBe(email);
    expect(row.status).toBe("active");
    expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect((await auditRows(t.db, user!.id)).map((e) => e.type)).toEqual(["SIGN_UP"]);
  });

  it("creates an account by username only, lower-cased", async () => {
    const username = uniqueUsername("Name");
    const { user, tokens } = await auth.signUp({ username: username.toUpperCase(), password: PASSWORD });
    expect(user).toMatchObject({ username, email: "", phone: "" });
    expect((await t.verify(tokens!.accessToken)).username).toBe(username);
  });

  it("creates an account by phone only, in E.164 form", async () => {
    const phone = uniquePhone();
    const formatted = `+1 (415) 555-${phone.slice(-4)}`;
    const { user } = await auth.signUp({ phone: formatted, password: PASSWORD });
    expect(user).toMatchObject({ phone, email: "", username: "", phoneVerified: false });
  });

  it("refuses every invalid field at once and stores nothing", async () => {
    const error = await t.expectUnchanged(() =>
      expectError(
        auth.signUp({ email: "no-at-sign.example.com", username: "x!", phone: "555-0100", password: "short", displayName: "d".repeat(101) }),
        { code: Code.InvalidArgument, reason: "INVALID_ARGUMENT", fields: ["email", "username", "phone", "password", "display_name"] },
      ),
    );
    expect(reasons(error)).toMatchObject({ email: "INVALID_EMAIL", username: "INVALID_USERNAME", phone: "INVALID_PHONE", password: "PASSWORD_TOO_SHORT" });
  });

  it("requires one identifier", async () => {
    const error = await t.expectUnchanged(() =>
      expectError(auth.signUp({ email: " ", password: PASSWORD }), { code: Code.InvalidArgument, fields: ["email"] }),
    );
    expect(reasons(error)).toEqual({ email: "IDENTIFIER_REQUIRED" });
  });

  it("refuses common passwords, whatever their case", async () => {
    for (const password of ["password", "IloveYou", "12345678"]) {
      const error = await t.expectUnchanged(() =>
        expectError(auth.signUp({ email: uniqueEmail("common"), password }), { code: Code.InvalidArgument, fields: ["password"] }),
      );
      expect(reasons(error)).toEqual({ password: "PASSWORD_TOO_COMMON" });
    }
  });

  it("refuses passwords too short or too long in code points after NFKC", async () => {
    const cases: Array<[string, string]> = [
      ["😀".repeat(7), "PASSWORD_TOO_SHORT"], // 14 UTF-16 units, 7 code points
      ["ab".repeat(64) + "c", "PASSWORD_TOO_LONG"], // 129 code points
      ["ﬁ".repeat(65), "PASSWORD_TOO_LONG"], // 65 code points, 130 after NFKC
    ];
    for (const [password, reason] of cases) {
      const error = await t.expectUnchanged(() =>
        expectError(auth.signUp({ email: uniqueEmail("length"), password }), { code: Code.InvalidArgument, fields: ["password"] }),
      );
      expect(reasons(error)).toEqual({ password: reason });
    }
  });

  it("accepts 8 and 128 code points, counted after NFKC", async () => {
    await auth.signUp({ email: uniqueEmail("emoji8"), password: "😀".repeat(8) });
    await auth.signUp({ email: uniqueEmail("emoji128"), password: "😀".repeat(128) });
    // Four ligatures are four code points, but eight after NFKC; the hash is of the NFKC form.
    const email = uniqueEmail("ligature");
    await auth.signUp({ email, password: "ﬁ".repeat(4) });
    await login(auth, email, "fifififi");
  });

  it("refuses a taken email, also in another case, and stores nothing", async () => {
    const email = uniqueEmail("dup");
    await auth.signUp({ email, password: PASSWORD });
    for (const again of [email, email.toUpperCase()]) {
      await t.expectUnchanged(() =>
        expectError(auth.signUp({ email: again, password: PASSWORD }), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" }),
        ["rate_limits"], // a refused sign-up still spends the caller's sign-up quota
      );
    }
  });

  it("refuses a taken username or phone, however written", async () => {
    const username = uniqueUsername("dup");
    const phone = uniquePhone();
    await auth.signUp({ username, phone, password: PASSWORD });
    await t.expectUnchanged(async () => {
      await expectError(auth.signUp({ username: username.toUpperCase(), password: PASSWORD }), {
        code: Code.AlreadyExists,
        reason: "IDENTIFIER_TAKEN",
      });
      await expectError(auth.signUp({ email: uniqueEmail("dup-phone"), phone: `+1 415 555 ${phone.slice(-4)}`, password: PASSWORD }), {
        code: Code.AlreadyExists,
        reason: "IDENTIFIER_TAKEN",
      });
    }, ["rate_limits"]); // a refused sign-up still spends the caller's sign-up quota
  });
});
