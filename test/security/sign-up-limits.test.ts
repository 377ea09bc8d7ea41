// SignUp has limits of its own, per client address and across the service, taken before the
// password is hashed: a refused sign-up costs no argon2 time and stores nothing.
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { PASSWORD, uniqueEmail } from "../support/accounts.js";
import { expectError, retryDelayMs } from "../support/errors.js";
import { ManualClock, type TestService } from "../support/service.js";
import { useService } from "../support/suite.js";
import { clientsFor, type Clients } from "../support/transports.js";
import { expectNothingStored, limitHits } from "../otp/helpers.js";

const clock = new ManualClock();
let service: TestService;
useService(
  (started) => {
    service = started;
  },
  { clock, env: { SIGNUP_MAX_PER_IP_PER_HOUR: "3", SIGNUP_MAX_PER_HOUR: "6", ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" } },
);

function signUpFrom(ip: string, email = uniqueEmail("limits"), password = PASSWORD) {
  return service.app.services.accounts.signUp({ email, username: "", phone: "", password, displayName: "" }, { ip, userAgent: "test" });
}

async function users(): Promise<number> {
  return ((await service.db.query(`SELECT count(*)::int AS n FROM users`)) as Array<{ n: number }>)[0]!.n;
}

it("defaults: 20 per client address and 10000 in total per hour", () => {
  const config = loadConfig({ NODE_ENV: "test" });
  expect(config.signUpLimits).toEqual({ maxPerIpPerHour: 20, maxPerHour: 10_000 });
});

describe("SignUp limits", () => {
  let clients: Clients | undefined;

  it("refuse a client address beyond SIGNUP_MAX_PER_IP_PER_HOUR with RetryInfo, storing nothing at all", async () => {
    clients = clientsFor(service, "grpc");
    const auth = clients.client(AuthService);
    for (let i = 0; i < 3; i++) await auth.signUp({ email: uniqueEmail("per-ip"), password: PASSWORD });
    // A refused sign-up records no hit either: the limit refused it, all or nothing.
    await expectNothingStored(service.db, service.logLines, async () => {
      const refused = await expectError(auth.signUp({ email: uniqueEmail("per-ip"), password: PASSWORD }), {
        code: Code.ResourceExhausted,
        reason: "RATE_LIMITED",
      });
      expect(retryDelayMs(refused)).toBeGreaterThan(3_500_000);
      expect(refused.rawMessage).toBe("too many requests; retry later");
    });
    expect(service.logLines.some((l) => l.includes("rate limited by sign-up:ip"))).toBe(true);
    clients.close();
  });

  it("count an IPv6 /64 as one address; invalid requests count nothing", async () => {
    await expect(signUpFrom("2001:db8:5:6::1", uniqueEmail("v6"), "short")).rejects.toMatchObject({ reason: "INVALID_ARGUMENT" });
    expect(await limitHits(service.db, "sign-up:ip:2001:db8:5:6::/64")).toBe(0);
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
