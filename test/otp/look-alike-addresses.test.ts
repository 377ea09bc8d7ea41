// Look-alike email addresses (issue 10, item 1) against a verified victim account, through every
// flow that finds an account by address: SendOtp (LOGIN, PASSWORD_RESET, VERIFY_CONTACT),
// RequestPasswordReset/ResetPassword, SignUp and Login. A spelling is either refused
// (INVALID_ARGUMENT, nothing stored, nothing sent), or is the victim's address (its codes go to
// the victim's stored address), or is another mailbox (its codes go there and reach no other
// account). The attacker spends every code sent to a mailbox that is not the victim's; the
// victim's account must come out untouched.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { bearer, login, PASSWORD, signUp, uniquePhone } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { type TransportName } from "../support/transports.js";
import { codeIn } from "../support/outbox.js";

const ATTACKER_PASSWORD = "the attacker's own passphrase";
const EMAIL = OtpChannel.EMAIL;
const clock = new ManualClock();
const t = setupService({
  clock,
  env: {
    OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000",
    OTP_MAX_SENDS_PER_DESTINATION_PER_HOUR: "100",
    OTP_MAX_VERIFY_FAILURES_PER_IP_PER_HOUR: "10000",
    LOGIN_MAX_FAILURES_PER_IP_PER_HOUR: "10000",
    OTP_RESEND_COOLDOWN_SECONDS: "1",
    ARGON2_MEMORY_KIB: "1024",
    ARGON2_ITERATIONS: "1",
  },
});

type Kind = "refused" | "victim" | "other";

interface LookAlike {
  readonly name: string;
  /** The victim's address (signed up as typed here, verified). */
  readonly victim: (id: string) => string;
  /** The attacker's spelling. */
  readonly spelled: (id: string) => string;
  readonly kind: Kind;
  /** For "other": the mailbox its codes go to (its canonical form). */
  readonly mailbox?: (id: string) => string;
}

const lookAlikes: LookAlike[] = [
  { name: "U+212A KELVIN SIGN", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `\u212Aim-${id}@example.org`, kind: "victim" },
  {
    name: "U+212B ANGSTROM SIGN",
    victim: (id) => `\u00E5sa-${id}@example.org`,
    spelled: (id) => `\u212Bsa-${id}@example.org`,
    kind: "other",
    mailbox: (id) => `\u00C5sa-${id}@example.org`,
  },
  { name: "U+0130 CAPITAL I WITH DOT", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `K\u0130M-${id}@example.org`, kind: "other", mailbox: (id) => `K\u0130M-${id}@example.org` },
  { name: "U+0131 DOTLESS I", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `k\u0131m-${id}@example.org`, kind: "other", mailbox: (id) => `k\u0131m-${id}@example.org` },
  { name: "fullwidth letters in the local part", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `\uFF4B\uFF49\uFF4D-${id}@example.org`, kind: "refused" },
  { name: "fullwidth letters in the domain", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `kim-${id}@\uFF45\uFF58ample.org`, kind: "victim" },
  { name: "zero-width space", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `k\u200Bim-${id}@example.org`, kind: "refused" },
  { name: "zero-width joiner", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `kim-${id}\u200D@example.org`, kind: "refused" },
  { name: "zero-width space in the domain", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `kim-${id}@exam\u200Bple.org`, kind: "refused" },
  { name: "bidi override", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `\u202Ekim-${id}@example.org`, kind: "refused" },
  { name: "upper case", victim: (id) => `kim-${id}@example.org`, spelled: (id) => `KIM-${id}@Example.ORG`, kind: "victim" },
];

/** The flows of this file over grpc-js and the gRPC-web gateway. */
const transports: TransportName[] = ["grpc", "grpc-web"];

/** The response, or the error the call failed with. */
function settle<T>(call: Promise<T>): Promise<T | ConnectError> {
  return call.catch((err: unknown) => ConnectError.from(err));
}

function reasonOf(err: unknown): string | undefined {
  return ConnectError.from(err).findDetails(ErrorInfoSchema)[0]?.reason;
}

describe.each(transports)("look-alike addresses over %s", (name) => {
  const { otp, auth } = t.clients(name);

  /** A victim who signed up with a password and proved the address with a VERIFY_CONTACT code. */
  async function verifiedVictim(address: string) {
    const account = await signUp(auth, "victim", { email: address });
    clock.advance(2_000);
    const purpose = OtpPurpose.VERIFY_CONTACT;
    const me = bearer(account.tokens.accessToken);
    await otp.sendOtp({ channel: EMAIL, destination: address, purpose }, me);
    const verified = await otp.verifyOtp({ channel: EMAIL, destination: address, purpose, code: t.outbox.lastCode(address) }, me);
    expect(verified.user).toMatchObject({ id: account.userId, email: address, emailVerified: true });
    return account;
  }

  /** What a takeover would change: the account row and its sessions. */
  async function accountState(userId: string): Promise<unknown> {
    return t.db.query(
      `SELECT u.email, u.email_verified_at, u.password_hash, u.tokens_valid_after, u.status, u.updated_at,
              (SELECT count(*)::int FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL) AS live_sessions,
              (SELECT count(*)::int FROM sessions s WHERE s.user_id = u.id) AS sessions
       FROM users u WHERE u.id = $1`,
      [userId],
    );
  }

  it.each(lookAlikes)("$name: no code reaches a look-alike mailbox, nothing reaches the victim's account", async (lookAlike) => {
    const id = randomUUID().slice(0, 8);
    const victimAddress = lookAlike.victim(id);
    const spelled = lookAlike.spelled(id);
    const victim = await verifiedVictim(victimAddress);
    const attacker = await signUp(auth, `attacker-${name}`);
    const before = await accountState(victim.userId);
    const field = { code: Code.InvalidArgument, reason: "INVALID_ARGUMENT" };

    /** Sends a code for `spelled`: refused, or delivered to exactly one mailbox, which the attacker uses when it is not the victim's. */
    async function send(call: () => Promise<unknown>, spend: (code: string) => Promise<void>) {
      clock.advance(2_000);
      if (lookAlike.kind === "refused") {
        await t.expectNothingStored(() => expectError(call(), { ...field, fields: ["destination"] }));
        return;
      }
      const already = t.outbox.messages().length;
      await call();
      const sent = t.outbox.messages().slice(already);
      const expected = lookAlike.kind === "victim" ? victimAddress : lookAlike.mailbox!(id);
      expect(sent.map((m) => m.to)).toEqual([expected]);
      for (const message of sent) if (message.to !== victimAddress) await spend(codeIn(message.text));
    }

    const spendLogin = async (code: string) => {
      const signedIn = await settle(otp.verifyOtp({ channel: EMAIL, destination: spelled, purpose: OtpPurpose.LOGIN, code }));
      if (signedIn instanceof ConnectError) expect(reasonOf(signedIn)).toBe("OTP_INVALID");
      else expect(signedIn.user?.id).not.toBe(victim.userId);
    };
    const spendReset = async (code: string) => {
      const reset = await settle(auth.resetPassword({ channel: EMAIL, destination: spelled, code, newPassword: ATTACKER_PASSWORD }));
      // With no account at that mailbox a right code resets nothing and answers like a wrong one.
      if (reset instanceof ConnectError) expect(reasonOf(reset)).toBe("OTP_INVALID");
    };

    await send(() => otp.sendOtp({ channel: EMAIL, destination: spelled, purpose: OtpPurpose.LOGIN }), spendLogin);
    await send(() => otp.sendOtp({ channel: EMAIL, destination: spelled, purpose: OtpPurpose.PASSWORD_RESET }), spendReset);
    await send(() => auth.requestPasswordReset({ channel: EMAIL, destination: spelled }), spendReset);

    // VERIFY_CONTACT signed in as someone else: never the attacker's own address, so always refused.
    await t.expectNothingStored(() =>
      expectError(otp.sendOtp({ channel: EMAIL, destination: spelled, purpose: OtpPurpose.VERIFY_CONTACT }, bearer(attacker.tokens.accessToken)), {
        ...field,
        fields: ["destination"],
      }),
    );

    // SignUp never shadows the victim: refused, taken, or an account of that other mailbox.
    if (lookAlike.kind === "refused") {
      await t.expectNothingStored(() =>
        expectError(auth.signUp({ email: spelled, password: ATTACKER_PASSWORD }), { ...field, fields: ["email"] }),
      );
    } else if (lookAlike.kind === "victim") {
      await t.expectNothingStored(() =>
        expectError(auth.signUp({ email: spelled, password: ATTACKER_PASSWORD }), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" }),
        { except: ["rate_limits"] }, // it got as far as the uniqueness check: its sign-up quota is spent
      );
    } else {
      const created = await settle(auth.signUp({ email: spelled, password: ATTACKER_PASSWORD }));
      // Taken when the database's lower() folds the two (the unique index), or when a LOGIN code above created it.
      if (created instanceof ConnectError) expect(reasonOf(created)).toBe("IDENTIFIER_TAKEN");
      else expect(created.user).toMatchObject({ email: lookAlike.mailbox!(id) });
      if (!(created instanceof ConnectError)) expect(created.user?.id).not.toBe(victim.userId);
    }

    // Login: the attacker's password never opens the victim's account, under any spelling.
    for (const identifier of [spelled, victimAddress]) {
      const attempt = await settle(auth.login({ identifier, password: ATTACKER_PASSWORD }));
      if (attempt instanceof ConnectError) expect(reasonOf(attempt)).toBe(identifier === spelled && lookAlike.kind === "refused" ? "INVALID_ARGUMENT" : "INVALID_CREDENTIALS");
      else expect(attempt.user?.id).not.toBe(victim.userId);
    }

    expect(await accountState(victim.userId), "the victim's account changed").toEqual(before);
    expect(await t.verify(victim.tokens.accessToken)).toMatchObject({ active: true, userId: victim.userId });
    // The victim's own password, through the spelling: only a spelling of the victim's address finds the account.
    const own = await settle(auth.login({ identifier: spelled, password: PASSWORD }));
    if (lookAlike.kind === "victim") expect(own).toMatchObject({ user: { id: victim.userId } });
    else expect(reasonOf(own)).toBe(lookAlike.kind === "refused" ? "INVALID_ARGUMENT" : "INVALID_CREDENTIALS");
    await login(auth, victimAddress);
  });

  it("phone numbers: fullwidth digits are the same number, invisible characters are refused", async () => {
    const phone = uniquePhone();
    const account = await signUp(auth, "phone-victim", { phone });
    const me = bearer(account.tokens.accessToken);
    clock.advance(2_000);
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.VERIFY_CONTACT }, me);
    await otp.verifyOtp({ channel: OtpChannel.SMS, destination: phone, purpose: OtpPurpose.VERIFY_CONTACT, code: t.outbox.lastCode(phone) }, me);

    const fullwidth = phone.replace(/\d/g, (d) => String.fromCodePoint(0xff10 + Number(d)));
    clock.advance(2_000);
    const already = t.outbox.messages().length;
    await otp.sendOtp({ channel: OtpChannel.SMS, destination: fullwidth, purpose: OtpPurpose.LOGIN });
    expect(t.outbox.messages().slice(already).map((m) => m.to)).toEqual([phone]);
    await expectError(auth.signUp({ phone: fullwidth, password: ATTACKER_PASSWORD }), { code: Code.AlreadyExists, reason: "IDENTIFIER_TAKEN" });
    expect((await login(auth, fullwidth)).sessionId).toBeTruthy();

    for (const invisible of ["\u200B", "\u200D", "\u202E", "\u2060", "\uFEFF"]) {
      const spelled = `${phone.slice(0, 5)}${invisible}${phone.slice(5)}`;
      clock.advance(2_000);
      await t.expectNothingStored(async () => {
        for (const purpose of [OtpPurpose.LOGIN, OtpPurpose.PASSWORD_RESET]) {
          await expectError(otp.sendOtp({ channel: OtpChannel.SMS, destination: spelled, purpose }), { code: Code.InvalidArgument, fields: ["destination"] });
        }
        await expectError(auth.requestPasswordReset({ channel: OtpChannel.SMS, destination: spelled }), { code: Code.InvalidArgument, fields: ["destination"] });
        await expectError(auth.signUp({ phone: spelled, password: ATTACKER_PASSWORD }), { code: Code.InvalidArgument, fields: ["phone"] });
        await expectError(auth.login({ identifier: spelled, password: PASSWORD }), { code: Code.InvalidArgument, fields: ["identifier"] });
      });
    }
  });

  it("the takeover of the issue: a reset asked for \\u212Aim@... sends nothing to that mailbox and cannot reset kim@...", async () => {
    const id = randomUUID().slice(0, 8);
    const victimAddress = `kim-${id}@example.org`;
    const spelled = `\u212Aim-${id}@example.org`;
    const victim = await verifiedVictim(victimAddress);

    clock.advance(2_000);
    await auth.requestPasswordReset({ channel: EMAIL, destination: spelled });
    clock.advance(2_000);
    await otp.sendOtp({ channel: EMAIL, destination: spelled, purpose: OtpPurpose.LOGIN });
    // The attacker reads the look-alike mailbox and spends whatever arrived there.
    const stolen = t.outbox.messages(spelled);
    for (const message of stolen) {
      const code = codeIn(message.text);
      if (message.text.startsWith("Your password reset code")) {
        await auth.resetPassword({ channel: EMAIL, destination: spelled, code, newPassword: ATTACKER_PASSWORD }).catch(() => undefined);
      } else {
        const signedIn = await otp.verifyOtp({ channel: EMAIL, destination: spelled, purpose: OtpPurpose.LOGIN, code }).catch(() => undefined);
        expect(signedIn?.user?.id, "signed in to the victim's account with a code from a look-alike mailbox").not.toBe(victim.userId);
      }
    }
    await expectError(auth.login({ identifier: victimAddress, password: ATTACKER_PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    expect(await t.verify(victim.tokens.accessToken)).toMatchObject({ active: true });
    expect(stolen, "codes sent to the look-alike mailbox").toEqual([]);

    // Both codes went to the victim's stored address; the reset code resets the victim's password.
    const received = t.outbox.messages(victimAddress).map((m) => m.text);
    expect(received).toEqual([
      expect.stringMatching(/^Your verification code is \d{6}\./),
      expect.stringMatching(/^Your password reset code is \d{6}\./),
      expect.stringMatching(/^Your sign-in code is \d{6}\./),
    ]);
    await auth.resetPassword({ channel: EMAIL, destination: spelled, code: codeIn(received[1]!), newPassword: "the victim's new passphrase" });
    expect(await t.verify(victim.tokens.accessToken)).toMatchObject({ active: false });
    expect((await login(auth, victimAddress, "the victim's new passphrase")).sessionId).toBeTruthy();
  });
});

describe("display names", () => {
  const { auth } = t.clients("connect");

  it("refuses CR/LF, ANSI escape sequences, bidi overrides and zero-width characters, storing nothing", async () => {
    for (const displayName of ["Ada\r\nINFO forged log line", "\u001B[2J\u001B[31mAda", "Ada\u202Egpj.exe", "\u200B", "Ada\u2028Lovelace", "Ada\tLovelace"]) {
      const email = `name-${randomUUID().slice(0, 8)}@example.org`;
      await t.expectNothingStored(() =>
        expectError(auth.signUp({ email, password: PASSWORD, displayName }), { code: Code.InvalidArgument, reason: "INVALID_ARGUMENT", fields: ["display_name"] }),
      );
    }
  });

  it("keeps names in any script, with joiners inside words and emoji", async () => {
    for (const displayName of ["Jörg Müller", "می\u200Cخواهم", "👩\u200D💻 Ada"]) {
      const { user } = await auth.signUp({ email: `name-${randomUUID().slice(0, 8)}@example.org`, password: PASSWORD, displayName });
      expect(user?.displayName).toBe(displayName);
    }
  });
});
