// The client's per-route policy on its own (no service): the same rules as VerifyToken's
// require_amr (every listed method), max_auth_age and require_role (one of), with a step-up told
// apart from a role, and service tokens accepted only where a route allows them and asks
// nothing of a person.
import { describe, expect, it } from "vitest";
import { applyPolicy, type ServicePrincipal, type UserPrincipal } from "../../src/client/index.js";

const NOW = Date.parse("2026-12-03T12:00:00Z");
const user: UserPrincipal = {
  kind: "user",
  subject: "0a1b2c3d-0000-4000-8000-000000000001",
  userId: "0a1b2c3d-0000-4000-8000-000000000001",
  sessionId: "0a1b2c3d-0000-4000-8000-000000000002",
  tokenId: "t",
  role: "user",
  username: "",
  amr: ["pwd", "otp", "mfa"],
  issuedAt: new Date(NOW - 10_000),
  expiresAt: new Date(NOW + 290_000),
  authTime: new Date(NOW - 600_000),
};
const service: ServicePrincipal = {
  kind: "service",
  subject: "service:billing",
  service: "billing",
  scope: ["reports.read"],
  tokenId: "s",
  issuedAt: new Date(NOW - 10_000),
  expiresAt: new Date(NOW + 290_000),
};

describe("applyPolicy", () => {
  it("accepts a person with no policy or an empty one, and refuses a service there", () => {
    expect(applyPolicy(user, undefined, NOW)).toEqual({ ok: true, principal: user });
    expect(applyPolicy(user, {}, NOW)).toEqual({ ok: true, principal: user });
    expect(applyPolicy(user, { requireAmr: [], requireRole: [] }, NOW)).toEqual({ ok: true, principal: user });
    expect(applyPolicy(service, undefined, NOW)).toEqual({ ok: false, reason: "insufficient_role" });
    expect(applyPolicy(service, {}, NOW)).toEqual({ ok: false, reason: "insufficient_role" });
  });

  it("needs every listed amr method", () => {
    expect(applyPolicy(user, { requireAmr: ["mfa"] }, NOW).ok).toBe(true);
    expect(applyPolicy(user, { requireAmr: ["pwd", "mfa"] }, NOW).ok).toBe(true);
    expect(applyPolicy(user, { requireAmr: ["mfa", "hwk"] }, NOW)).toEqual({ ok: false, reason: "step_up_required", requiredAmr: ["mfa", "hwk"] });
    expect(applyPolicy({ ...user, amr: ["pwd"] }, { requireAmr: ["mfa"], maxAuthAge: 3600 }, NOW)).toEqual({ ok: false, reason: "step_up_required", requiredAmr: ["mfa"], maxAge: 3600 });
  });

  it("measures the authentication age from authTime, to the second's boundary", () => {
    expect(applyPolicy(user, { maxAuthAge: 600 }, NOW).ok).toBe(true);
    expect(applyPolicy(user, { maxAuthAge: 599 }, NOW)).toEqual({ ok: false, reason: "step_up_required", maxAge: 599 });
    expect(applyPolicy(user, { requireAmr: ["mfa"], maxAuthAge: 599 }, NOW)).toEqual({ ok: false, reason: "step_up_required", maxAge: 599 });
  });

  it("asks for a step-up before looking at the role, and refuses a role with insufficient_role", () => {
    expect(applyPolicy(user, { requireRole: "admin" }, NOW)).toEqual({ ok: false, reason: "insufficient_role" });
    expect(applyPolicy(user, { requireRole: ["admin", "user"] }, NOW).ok).toBe(true);
    expect(applyPolicy({ ...user, amr: ["pwd"] }, { requireRole: "admin", requireAmr: ["mfa"] }, NOW)).toMatchObject({ ok: false, reason: "step_up_required" });
  });

  it("accepts a service only where allowed and nothing of a person is asked", () => {
    expect(applyPolicy(service, { allowServices: true }, NOW)).toEqual({ ok: true, principal: service });
    for (const personal of [{ requireAmr: ["mfa"] }, { maxAuthAge: 60 }, { requireRole: "admin" }]) {
      expect(applyPolicy(service, { allowServices: true, ...personal }, NOW), JSON.stringify(personal)).toEqual({ ok: false, reason: "insufficient_role" });
    }
    expect(applyPolicy(user, { allowServices: true }, NOW).ok).toBe(true);
  });
});
