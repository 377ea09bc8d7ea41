// The profile rules without a database: settings, birth dates, country codes.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { COUNTRY_CODES, normalizeCountry } from "../../src/domain/accounts/countries.js";
import { checkBirthDate } from "../../src/domain/accounts/profile.js";
import { Violations } from "../../src/domain/errors.js";

describe("profile settings", () => {
  it("REQUIRED_PROFILE_FIELDS with an unknown name stops the start; MIN_AGE is bounded", () => {
    expect(() => loadConfig({ REQUIRED_PROFILE_FIELDS: "country,email" })).toThrow(/REQUIRED_PROFILE_FIELDS.*"email"/);
    expect(() => loadConfig({ MIN_AGE: "-1" })).toThrow(/MIN_AGE/);
    expect(() => loadConfig({ REAUTH_MAX_AGE_SECONDS: "5" })).toThrow(/REAUTH_MAX_AGE_SECONDS/);
    expect(loadConfig({ REQUIRED_PROFILE_FIELDS: " country , birth_date " }).profile.requiredFields).toEqual(new Set(["country", "birth_date"]));
    expect(loadConfig({}).profile).toEqual({ minAge: 0, requiredFields: new Set() });
    expect(loadConfig({}).reauthMaxAgeSec).toBe(300);
  });
});

describe("birth dates", () => {
  const today = new Date("2025-02-28T23:59:59Z");
  const check = (raw: string, minAge = 0) => {
    const violations = new Violations();
    const value = checkBirthDate(violations, "birth_date", raw, today, minAge);
    return value ?? (violations.empty ? "?" : "refused");
  };

  it("are real calendar dates as YYYY-MM-DD, from 1900, not after today (UTC)", () => {
    expect(check("2024-02-29")).toBe("2024-02-29");
    expect(check("2023-02-29")).toBe("refused");
    expect(check("2025-02-28")).toBe("2025-02-28");
    expect(check("2025-03-01")).toBe("refused");
    expect(check("1900-01-01")).toBe("1900-01-01");
    expect(check("1899-12-31")).toBe("refused");
    expect(check("1990-13-01")).toBe("refused");
    expect(check("1990-1-01")).toBe("refused");
    expect(check("1990-01-01T00:00")).toBe("refused");
  });

  it("count full years for MIN_AGE (a 29 February birthday comes on 1 March)", () => {
    expect(check("2012-02-29", 13)).toBe("refused");
    expect(check("2012-02-28", 13)).toBe("2012-02-28");
    expect(check("2012-02-28", 14)).toBe("refused");
  });
});

describe("country codes", () => {
  it("are the 249 assigned ISO 3166-1 alpha-2 codes, each with a name", () => {
    expect(COUNTRY_CODES.size).toBe(249);
    const names = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
    for (const code of COUNTRY_CODES) expect(names.of(code), code).toBeTruthy();
  });

  it("refuse reserved, withdrawn and user-assigned codes that Intl.DisplayNames still names", () => {
    for (const code of ["EU", "UN", "UK", "XK", "ZZ", "SU", "YU", "AN", "QO", "AC"]) expect(normalizeCountry(code), code).toBeUndefined();
    expect(normalizeCountry(" de ")).toBe("DE");
    expect(normalizeCountry("DEU")).toBeUndefined();
    expect(normalizeCountry("Ｄｅ")).toBeUndefined();
  });
});
