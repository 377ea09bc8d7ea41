// The end user's address (issue 12, item 4). A BFF holding client-address.forward (a service
// account granted it) or a peer inside TRUSTED_PROXIES passes the person's address in x-forwarded-for;
// rate limits, sessions and audit then use it. From anyone else the header is ignored; a
// malformed header is ignored, never an error.
import { Code } from "@connectrpc/connect";
import { beforeEach, describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { uniqueEmail } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { accountWithKey } from "../support/service-accounts.js";
import { setupService, type TestContext } from "../support/setup.js";
import { limitHits } from "../support/stored-data.js";
import type { TransportName } from "../support/transports.js";

const LOGIN = OtpPurpose.LOGIN;
const EMAIL = OtpChannel.EMAIL;
/** Two sends per client address an hour: the third from one address is refused. */
const ENV = { OTP_MAX_SENDS_PER_IP_PER_HOUR: "2" };
const person = (n: number) => `198.51.100.${n}`;

function sender(t: TestContext, via: TransportName) {
  const { otp } = t.clients(via);
  return (headers: Record<string, string>, destination = uniqueEmail("fwd")) =>
    otp.sendOtp({ channel: EMAIL, destination, purpose: LOGIN }, { headers });
}

/** Each test starts with no per-address counts, so the counts it reads are its own. */
function freshLimits(t: TestContext) {
  beforeEach(async () => {
    await t.db.query("DELETE FROM rate_limits");
  });
}

/** Sends counted against exactly `address` (rate-limit key `otp-send:ip:<address>`). */
async function sendHits(t: TestContext, address: string): Promise<number> {
  const [row] = (await t.db.query("SELECT coalesce(sum(cardinality(hits)), 0)::int AS n FROM rate_limits WHERE key = $1", [`otp-send:ip:${address}`])) as Array<{ n: number }>;
  return row!.n;
}
/** Sends counted against any address starting with `prefix`. */
const sendHitsUnder = (t: TestContext, prefix: string) => limitHits(t.db, `otp-send:ip:${prefix}`);

describe("without TRUSTED_PROXIES", () => {
  const t = setupService({ env: ENV });
  freshLimits(t);
  const send = sender(t, "grpc");
  // A BFF whose account holds client-address.forward, and a backend whose account does not.
  const keys = t.prepare(async () => ({
    bff: (await accountWithKey(t, "bff-web", ["client-address.forward"])).key,
    verifier: (await accountWithKey(t, "orders", ["tokens.verify"])).key,
  }));
  const bff = (address: string) => ({ "x-service-key": keys().bff, "x-forwarded-for": address });

  it("limits 40 people signing in through one BFF connection one by one, not together", async () => {
    for (let n = 1; n <= 40; n++) await send(bff(person(n)));
    expect(await sendHits(t, "127.0.0.1")).toBe(0);
    for (let n = 1; n <= 40; n++) expect(await sendHits(t, person(n))).toBe(1);
    // Person 1's own cap: a second code, then refused; person 2 is untouched by it.
    await send(bff(person(1)));
    await t.expectNothingStored(() => expectError(send(bff(person(1))), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" }), { except: ["rate_limits"] });
    await send(bff(person(2)));
  });

  it("stores the forwarded address on the session and audit rows of a sign-in", async () => {
    const { otp } = t.clients("grpc");
    const email = uniqueEmail("fwd-signin");
    const headers = bff(person(7));
    await otp.sendOtp({ channel: EMAIL, destination: email, purpose: LOGIN }, { headers });
    const signedIn = await otp.verifyOtp({ channel: EMAIL, destination: email, purpose: LOGIN, code: t.outbox.lastCode(email) }, { headers });
    expect(signedIn.result.case).toBe("tokens");
    const tokens = signedIn.result.value as { accessToken: string };
    const { userId, sessionId } = await t.verify(tokens.accessToken);
    const sessions = (await t.db.query("SELECT ip_address FROM sessions WHERE id = $1", [sessionId])) as Array<{ ip_address: string }>;
    expect(sessions).toEqual([{ ip_address: person(7) }]);
    const audit = (await t.db.query("SELECT DISTINCT ip_address FROM audit_events WHERE user_id = $1", [userId])) as Array<{ ip_address: string }>;
    expect(audit).toEqual([{ ip_address: person(7) }]);
  });

  it("ignores the header from a caller without the permission (no key, the dev loopback exemption, a named key without client-address.forward)", async () => {
    const forged: Array<Record<string, string>> = [
      { "x-forwarded-for": person(1) },
      { "x-forwarded-for": person(2), "x-service-key": keys().verifier },
    ];
    await send(forged[0]!);
    await send(forged[1]!);
    for (let n = 3; n <= 40; n++) {
      await expectError(send(forged[n % 2]!), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    }
    expect(await sendHits(t, "127.0.0.1")).toBe(2);
    expect(await sendHitsUnder(t, "198.51.100.")).toBe(0);
  });

  it("refuses a wrong key outright (UNAUTHENTICATED), storing nothing, rather than ignoring its header", async () => {
    await t.expectNothingStored(() =>
      expectError(send({ "x-forwarded-for": person(3), "x-service-key": "wrong-key-0123456789abcdef0123456789abcdef" }), {
        code: Code.Unauthenticated,
        reason: "SERVICE_KEY_INVALID",
      }),
    );
  });

  it("takes the nearest hop that is not a trusted proxy", async () => {
    // No TRUSTED_PROXIES: the hop the BFF itself received the call from is the client.
    await send(bff(`203.0.113.9, ${person(5)}`));
    expect(await sendHits(t, person(5))).toBe(1);
    expect(await sendHits(t, "203.0.113.9")).toBe(0);
  });

  it.each(["not-an-ip", "999.1.1.1", "1.2.3.4, garbage", ",".repeat(2048), Array(17).fill("192.0.2.1").join(",")])(
    "ignores the malformed header %#, and the call succeeds from the peer's address",
    async (header) => {
      await send({ "x-service-key": TEST_SERVICE_KEY, "x-forwarded-for": header });
      expect(await sendHits(t, "127.0.0.1")).toBe(1);
      expect(await sendHits(t, "1.2.3.4")).toBe(0);
      expect(await sendHits(t, "192.0.2.1")).toBe(0);
    },
  );

  it("keys forwarded IPv6 addresses by their /64, like direct ones", async () => {
    await send(bff("2001:db8:1:2::a"));
    await send(bff("2001:DB8:1:2::b"));
    expect(await sendHits(t, "2001:db8:1:2::/64")).toBe(2);
    await expectError(send(bff("2001:db8:1:2:ffff::1")), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    await send(bff("2001:db8:1:3::1"));
    expect(await sendHits(t, "2001:db8:1:3::/64")).toBe(1);
  });

  describe.each(["connect", "grpc-web"] as const)("the gateway over %s", (via) => {
    const sendVia = sender(t, via);
    it("ignores X-Forwarded-For (even with a service key): its peer is not a trusted proxy", async () => {
      await sendVia({ "x-forwarded-for": person(1) });
      await sendVia({ "x-forwarded-for": person(2), "x-service-key": TEST_SERVICE_KEY });
      await expectError(sendVia({ "x-forwarded-for": person(3) }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
      expect(await sendHits(t, "127.0.0.1")).toBe(2);
      expect(await sendHitsUnder(t, "198.51.100.")).toBe(0);
    });
  });
});

describe("with TRUSTED_PROXIES=127.0.0.1/8", () => {
  const t = setupService({ env: { ...ENV, TRUSTED_PROXIES: "127.0.0.1/8" } });
  freshLimits(t);

  describe.each(["connect", "grpc-web", "grpc"] as const)("over %s", (via) => {
    const send = sender(t, via);
    it("honours X-Forwarded-For from the trusted peer, without any key", async () => {
      for (let n = 1; n <= 5; n++) await send({ "x-forwarded-for": person(n) });
      for (let n = 1; n <= 5; n++) expect(await sendHits(t, person(n))).toBe(1);
      expect(await sendHits(t, "127.0.0.1")).toBe(0);
      await send({ "x-forwarded-for": person(1) });
      await expectError(send({ "x-forwarded-for": person(1) }), { code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
    });

    it("walks right to left past trusted hops", async () => {
      await send({ "x-forwarded-for": `${person(9)}, 127.0.0.5` });
      expect(await sendHits(t, person(9))).toBe(1);
      expect(await sendHits(t, "127.0.0.5")).toBe(0);
    });

    it("ignores a malformed header, and the call succeeds from the peer's address", async () => {
      await send({ "x-forwarded-for": "1.2.3.4, garbage" });
      expect(await sendHits(t, "127.0.0.1")).toBe(1);
      expect(await sendHits(t, "1.2.3.4")).toBe(0);
    });
  });
});
