// Health per service (issue 14, item 6): which services answer while PostgreSQL is away is
// declared once (routes.ts servedWithoutDatabase) and readiness.ts derives every status from it;
// the container's HEALTHCHECK probes liveness, never the database.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Authorization } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { MfaService } from "../../gen/identity/v1/mfa_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { OtpService } from "../../gen/identity/v1/otp_service_pb.js";
import { TokenService } from "../../gen/identity/v1/token_service_pb.js";
import { healthStatuses, readinessReport, type ServiceReadiness } from "../../src/server/readiness.js";
import { apiServices, servedWithoutDatabase, vendoredServices } from "../../src/services/routes.js";

const root = path.resolve(import.meta.dirname, "../..");
/** As servers.ts builds it from the routes. */
const mounted: ServiceReadiness[] = [...apiServices, ...vendoredServices].map((service) => ({
  name: service.typeName,
  needsDatabase: !servedWithoutDatabase.has(service),
}));

describe("servedWithoutDatabase", () => {
  it("names TokenService and Envoy's Authorization, and no service that needs the database", () => {
    expect([...servedWithoutDatabase].map((s) => s.typeName).sort()).toEqual([Authorization.typeName, TokenService.typeName].sort());
    for (const service of [AuthService, OtpService, MfaService, AdminService]) expect(servedWithoutDatabase.has(service), service.typeName).toBe(false);
  });

  it("names only services both servers mount", () => {
    const all = new Set([...apiServices, ...vendoredServices]);
    for (const service of servedWithoutDatabase) expect(all.has(service), service.typeName).toBe(true);
  });
});

describe("readinessReport", () => {
  it("serves everything while the database is ok", () => {
    const report = readinessReport("ok", mounted);
    expect(report.overall).toBe("SERVING");
    expect(new Set(Object.values(report.services))).toEqual(new Set(["SERVING"]));
    expect(Object.keys(report.services)).toEqual(mounted.map((s) => s.name));
  });

  for (const database of ["unreachable", "migrations pending"] as const) {
    it(`keeps the services that answer from memory SERVING while the database is ${database}`, () => {
      const report = readinessReport(database, mounted);
      expect(report).toEqual({
        database,
        overall: "SERVING",
        services: {
          "identity.v1.AuthService": "NOT_SERVING",
          "identity.v1.TokenService": "SERVING",
          "identity.v1.OtpService": "NOT_SERVING",
          "identity.v1.MfaService": "NOT_SERVING",
          "identity.v1.AdminService": "NOT_SERVING",
          "identity.v1.PasskeyService": "NOT_SERVING",
          "identity.v1.FederationService": "NOT_SERVING",
          "envoy.service.auth.v3.Authorization": "SERVING",
        },
      });
      expect(healthStatuses(report)).toEqual({ "": "SERVING", ...report.services });
    });
  }

  it("reports the overall status NOT_SERVING only when no service can answer", () => {
    const allNeedIt = mounted.map((s) => ({ ...s, needsDatabase: true }));
    expect(readinessReport("unreachable", allNeedIt).overall).toBe("NOT_SERVING");
    expect(healthStatuses(readinessReport("unreachable", allNeedIt))[""]).toBe("NOT_SERVING");
    expect(readinessReport("ok", allNeedIt).overall).toBe("SERVING");
  });
});

describe("the Dockerfile", () => {
  it("probes liveness (/healthz) in its HEALTHCHECK, never readiness", () => {
    const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
    // Continuation lines joined, as Docker reads the instruction.
    const healthcheck = /^HEALTHCHECK\b.*$/m.exec(dockerfile.replace(/\\\n/g, " "))?.[0];
    expect(healthcheck).toBeDefined();
    expect(healthcheck).toContain("/healthz");
    expect(healthcheck).not.toContain("/readyz");
  });
});
