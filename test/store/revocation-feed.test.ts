// The revocation feed contract (contracts/revocation-feed.ts) against the real PostgreSQL, and
// the reading of the triggers' payloads, which needs none.
import { describe, expect, it } from "vitest";
import { parseRevocation } from "../../src/store/revocation-feed.js";
import { revocationFeedContract } from "./contracts/revocation-feed.js";
import { postgresStore, useStore } from "./support.js";

revocationFeedContract(useStore(postgresStore));

describe("parseRevocation", () => {
  it("reads the session and the user payloads of the RevocationNotify triggers", () => {
    const at = "2030-01-01T00:00:00.123+00:00";
    expect(parseRevocation(JSON.stringify({ session: "s1", at }))).toEqual([{ kind: "session", sessionId: "s1", at: new Date(at) }]);
    expect(parseRevocation(JSON.stringify({ user: "u1", after: at, status: "disabled" }))).toEqual([
      { kind: "user", userId: "u1", validAfter: new Date(at), status: "disabled" },
    ]);
  });

  it("ignores a status change that invalidated no tokens, and throws on what is not JSON", () => {
    expect(parseRevocation(JSON.stringify({ user: "u1", after: null, status: "active" }))).toEqual([]);
    expect(() => parseRevocation("not json")).toThrow();
  });
});
