// SignUp has limits of its own, per client address and across the service, taken before the
// password is hashed: a refused sign-up costs no argon2 time and stores nothing.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { PASSWORD, uniqueEmail } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock } from "../support/service.js";
import { setupService } from "../support/setup.js";
import { limitHits } from "../support/stored-data.js";

const clock = new ManualClock();
const t = setupService({ clock, env: { SIGNUP_MAX_PER_IP_PER_HOUR: "3", SIGNUP_MAX_PER_HOUR: "6", ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } });

function signUpFrom(ip: string, email = uniqueEmail("limits"), password = PASSWORD) {
  return t.app.services.accounts.signUp({ email, username: "", phone: "", password, displayName: "" }, { ip, userAgent: "test" });
}

async function users(): Promise<number> {
  return ((await t.db.query(`SELECT count(*)::int AS n FROM users`)) as Array<{ n: number }>)[0]!.n;
}

it("defaults: 20 per client address and 10000 in total per hour", () => {
  const config = loadConfig({ NODE_ENV: "test" });
  expect(config.signUpLimits).toEqual({ maxPerIpPerHour: 20, maxPerHour: 10_000 });
});

describe("SignUp limits", () => {
  it("refuse a client address beyond SIGNUP_MAX_PER_IP_PER_HOUR with RetryInfo, storing nothing at all", async () => {
    const { auth } = t.clients("grpc");
    for (let i = 0; i < 3; i++) await auth.signUp({ email: uniqueEmail("per-ip"), password: PASSWORD });
    // A refused sign-up records no hit either: the limit refused it, all or nothing.
    await t.expectNothingStored(async () => {
      const refused = await expectError(auth.signUp({ email: uniqueEmail("per-ip"), password: PASSWORD }), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
      expect(retryDelayMs(refused)).toBeGreaterThan(3_500_000);
      expect(refused.rawMessage).toBe("too many requests; retry later");
    });
    expect(t.logLines.some((l) => l.includes("rate limited by sign-up:ip"))).toBe(true);
  });

  it("count an IPv6 /64 as one address; invalid requests count nothing", async () => {
    await expect(signUpFrom("2001:db8:5:6::1", uniqueEmail("v6"), "short")).rejects.toMatchObject({ reason: "INVALID_ARGUMENT" });
    expect(await limitHits(t.db, "sign-up:ip:2001:db8:5:6::/64")).toBe(0);
    for (const ip of ["2001:db8:5:6::1", "2001:db8:5:6:ffff::2", "2001:db8:5:6::3"]) await signUpFrom(ip);
    const before = await users();
    await expect(signUpFrom("2001:db8:5:6:abcd::9")).rejects.toMatchObject({ reason: "RATE_LIMITED" });
    expect(await users()).toBe(before);
  });

  it("refuse every address beyond SIGNUP_MAX_PER_HOUR in total, and admit again an hour later", async () => {
    // 3 over gRPC and 3 from the IPv6 /64 so far: the service-wide budget of 6 is spent.
    const before = await users();
    await expect(signUpFrom("198.51.100.77")).rejects.toMatchObject({ reason: "RATE_LIMITED", message: expect.stringContaining("sign-up:global") });
    expect(await users()).toBe(before);
    clock.advance(3_600_000);
    await signUpFrom("198.51.100.77");
    expect(await users()).toBe(before + 1);
  });
});
