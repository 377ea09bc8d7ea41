// OtpService LOGIN end to end over every transport: sign-up and sign-in with nothing but a
// phone number or an email address, codes read from the console provider's log line.
import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose, type TokenPair } from "../../gen/identity/v1/common_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { auditRows, bearer, PASSWORD, sessionRows, signUp, uniqueEmail, uniquePhone } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const clock = new ManualClock();
const t = setupService({ clock, env: { OTP_MAX_SENDS_PER_IP_PER_HOUR: "10000", ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } });

const SMS = OtpChannel.SMS;
const EMAIL = OtpChannel.EMAIL;
const LOGIN = OtpPurpose.LOGIN;

describe.each(transportNames)("OTP login over %s", (name) => {
  const { otp, auth } = t.clients(name);

  async function signInWithCode(channel: OtpChannel, destination: string, sentTo: string) {
    await otp.sendOtp({ channel, destination, purpose: LOGIN });
    const response = await otp.verifyOtp({ channel, destination, purpose: LOGIN, code: t.outbox.lastCode(sentTo) });
    expect(response.result.case).toBe("tokens");
    return { response, tokens: response.result.value as TokenPair };
  }

  it("signs up with nothing but a phone number, then signs in again", async () => {
    const phone = uniquePhone();
    const written = `+1 (415) 555-${phone.slice(-4)}`;
    const sent = await otp.sendOtp({ channel: SMS, destination: written, purpose: LOGIN });
    const now = clock.now().getTime();
    expect(timestampDate(sent.expireTime!).getTime()).toBe(now + 300_000);
    expect(timestampDate(sent.resendTime!).getTime()).toBe(now + 30_000);
    // One structured line, the code inside its text, sent to the E.164 form.
    const [message] = t.outbox.messages(phone).slice(-1);
    expect(message).toMatchObject({ channel: "sms", to: phone });
    expect(message!.text).toMatch(/^Your sign-in code is \d{6}\. It expires in 5 minutes/);

    const code = t.outbox.lastCode(phone);
    const first = await otp.verifyOtp({ channel: SMS, destination: written, purpose: LOGIN, code: ` ${code} ` });
    expect(first.newUser).toBe(true);
    expect(first.user).toMatchObject({ phone, phoneVerified: true, email: "", hasPassword: false });
    expect(first.result.case).toBe("tokens");
    const tokens = first.result.value as TokenPair;
    expect(await t.verify(tokens.accessToken)).toMatchObject({ active: true, userId: first.user!.id, amr: ["otp", "sms"] });
    expect((await auth.whoAmI({}, bearer(tokens.accessToken))).user?.id).toBe(first.user!.id);

    clock.advance(31_000);
    const again = await signInWithCode(SMS, phone, phone);
    expect(again.response.newUser).toBe(false);
    expect(again.response.user?.id).toBe(first.user!.id);
    expect(again.tokens.sessionId).not.toBe(tokens.sessionId);
    const events = await auditRows(t.db, first.user!.id);
    expect(events.map((e) => [e.type, e.details])).toEqual([
      ["SIGN_UP", { method: "otp", channel: "sms" }],
      ["LOGIN_SUCCEEDED", { method: "otp", channel: "sms" }],
    ]);
    expect((await sessionRows(t.db, first.user!.id)).filter((s) => s.revoked_at === null)).toHaveLength(2);
  });

  it("signs up with an email address and signs in with it however it is cased", async () => {
    const email = uniqueEmail(`Otp-${name}`).replace("@example.com", "@Example.COM");
    const address = email.toLowerCase(); // the canonical form: an ASCII address is lower-cased
    const { response } = await signInWithCode(EMAIL, ` ${email} `, address);
    expect(response.newUser).toBe(true);
    expect(response.user).toMatchObject({ email: address, emailVerified: true, phone: "" });

    clock.advance(31_000);
    await otp.sendOtp({ channel: EMAIL, destination: email.toUpperCase(), purpose: LOGIN });
    // Sent to the address as the account has it (its canonical form); the same code row whatever the case.
    const again = await otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: t.outbox.lastCode(address) });
    expect(again).toMatchObject({ newUser: false, user: { id: response.user!.id } });
  });

  it("a code proving a never-verified contact takes the account from whoever put it there", async () => {
    // Someone signs up with another person's address and a password (account pre-hijacking).
    const squatter = await signUp(auth, `squat-${name}`);
    clock.advance(1_000); // rows are ordered by the service clock
    const { response, tokens } = await signInWithCode(EMAIL, squatter.email, squatter.email);
    expect(response).toMatchObject({ newUser: false, user: { id: squatter.userId, emailVerified: true, hasPassword: false } });
    // The squatter's password and session are gone at once; the owner's session works.
    expect(await t.verify(squatter.tokens.accessToken)).toMatchObject({ active: false });
    await expectError(auth.login({ identifier: squatter.email, password: PASSWORD }), { code: Code.Unauthenticated, reason: "INVALID_CREDENTIALS" });
    expect(await t.verify(tokens.accessToken)).toMatchObject({ active: true, amr: ["otp", "email"] });
    const sessions = await sessionRows(t.db, squatter.userId);
    expect(sessions.map((s) => s.revoke_reason)).toEqual(["contact_claimed", null]);
    const events = await auditRows(t.db, squatter.userId);
    expect(events.find((e) => e.type === "LOGIN_SUCCEEDED")?.details).toEqual({ method: "otp", channel: "email", contact_claimed: "true" });

    // Once verified, signing in by code again ends nobody's session.
    clock.advance(31_000);
    const second = await signInWithCode(EMAIL, squatter.email, squatter.email);
    expect(await t.verify(tokens.accessToken)).toMatchObject({ active: true });
    expect(await t.verify(second.tokens.accessToken)).toMatchObject({ active: true });
  });
});
