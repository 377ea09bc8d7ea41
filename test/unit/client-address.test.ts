// The client address a per-address limit is keyed by (no database): IPv4 as it is, IPv6 by its
// /64 in one canonical spelling, so that rotating through one's own /64 or re-spelling an address
// does not buy a fresh budget.
import { describe, expect, it } from "vitest";
import { clientAddressKey } from "../../src/domain/limits/rate-limits.js";

describe("clientAddressKey", () => {
  it("keeps an IPv4 address as it is", () => {
    expect(clientAddressKey("198.51.100.7")).toBe("198.51.100.7");
    expect(clientAddressKey("127.0.0.1")).toBe("127.0.0.1");
  });

  it("names a missing address 'unknown'", () => {
    expect(clientAddressKey("")).toBe("unknown");
  });

  it("keys an IPv6 address by its /64", () => {
    expect(clientAddressKey("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(clientAddressKey("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(clientAddressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
  });

  it("gives every spelling of one /64 the same key", () => {
    const spellings = [
      "2001:db8:1:2::1",
      "2001:0db8:0001:0002:0000:0000:0000:0001",
      "2001:DB8:1:2:abcd::9",
      "2001:db8:1:2:0:0:0:0",
      "2001:db8:1:2::",
    ];
    expect(new Set(spellings.map(clientAddressKey))).toEqual(new Set(["2001:db8:1:2::/64"]));
  });

  it("expands a :: that falls inside the first four groups", () => {
    expect(clientAddressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientAddressKey("::1")).toBe("0:0:0:0::/64");
    expect(clientAddressKey("::")).toBe("0:0:0:0::/64");
    expect(clientAddressKey("fe80::1:2:3:4")).toBe("fe80:0:0:0::/64");
  });

  it("keeps different /64s apart", () => {
    expect(clientAddressKey("2001:db8:1:2::1")).not.toBe(clientAddressKey("2001:db8:1:20::1"));
    expect(clientAddressKey("2001:db8::1:2:3:4")).not.toBe(clientAddressKey("2001:db8:1::2:3:4"));
  });
});
