// Races that SQL, not JavaScript, must settle: N concurrent refreshes of one token, and N
// concurrent sign-ups of one email in different letter cases.
import { Code, ConnectError } from "@connectrpc/connect";
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";

const PARALLEL = 20;
const PASSWORD = "a long enough passphrase";

const t = setupService();
const { auth, tokens } = t.clients("grpc");

function reasonOf(result: PromiseSettledResult<unknown>): string {
  if (result.status === "fulfilled") return "OK";
  const error = ConnectError.from(result.reason);
  return `${Code[error.code]}/${error.findDetails(ErrorInfoSchema)[0]?.reason ?? "?"}`;
}

describe(`${PARALLEL} concurrent RefreshToken calls with one refresh token`, () => {
  let signUp: Awaited<ReturnType<typeof auth.signUp>>;
  let results: PromiseSettledResult<Awaited<ReturnType<typeof tokens.refreshToken>>>[];

  beforeAll(async () => {
    signUp = await auth.signUp({ email: "refresh-race@example.com", password: PASSWORD });
    const refreshToken = signUp.tokens!.refreshToken;
    results = await Promise.allSettled(Array.from({ length: PARALLEL }, () => tokens.refreshToken({ refreshToken })));
  });

  it("exactly one succeeds; every other is UNAUTHENTICATED", () => {
    const outcomes = results.map(reasonOf);
    expect(outcomes.filter((o) => o === "OK")).toHaveLength(1);
    for (const outcome of outcomes.filter((o) => o !== "OK")) {
      expect(outcome).toMatch(/^Unauthenticated\/REFRESH_TOKEN_(REUSED|INVALID)$/);
    }
  });

  it("the losers count as reuse: the session is revoked for refresh_token_reuse", async () => {
    const [session] = await t.db.query(`SELECT revoked_at, revoke_reason FROM sessions WHERE id = $1`, [signUp.tokens!.sessionId]);
    expect(session.revoked_at).toBeInstanceOf(Date);
    expect(session.revoke_reason).toBe("refresh_token_reuse");
  });

  it("the reuse is audited once", async () => {
    const rows = await t.db.query(`SELECT session_id FROM audit_events WHERE user_id = $1 AND type = 'REFRESH_TOKEN_REUSED'`, [
      signUp.user!.id,
    ]);
    expect(rows).toEqual([{ session_id: signUp.tokens!.sessionId }]);
  });

  it("the winner's tokens died with the family", async () => {
    const winner = results.find((r) => r.status === "fulfilled")!.value.tokens!;
    expect(winner.sessionId).toBe(signUp.tokens!.sessionId);
    const verify = await tokens.verifyToken({ token: winner.accessToken }, { headers: { "x-service-key": TEST_SERVICE_KEY } });
    expect(verify.active).toBe(false);
    expect(verify.reason).toBe(InactiveReason.SESSION_REVOKED);
    const refreshed = await Promise.allSettled([tokens.refreshToken({ refreshToken: winner.refreshToken })]);
    expect(reasonOf(refreshed[0]!)).toBe("Unauthenticated/REFRESH_TOKEN_INVALID");
  });

  it("exactly one refresh token was issued after the original", async () => {
    const [{ count }] = await t.db.query(`SELECT count(*)::int AS count FROM refresh_tokens WHERE session_id = $1`, [
      signUp.tokens!.sessionId,
    ]);
    expect(count).toBe(2);
  });
});

/** Distinct spellings of one address: the i-th upper-cases the letters of the local part picked by i's bits. */
function caseVariants(local: string, domain: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const cased = [...local].map((ch, j) => ((i >> j) & 1 ? ch.toUpperCase() : ch)).join("");
    return `${cased}@${i % 2 ? domain.toUpperCase() : domain}`;
  });
}

describe(`${PARALLEL} concurrent SignUps with one email in different cases`, () => {
  const emails = caseVariants("signuprace", "example.com", PARALLEL);
  let results: PromiseSettledResult<Awaited<ReturnType<typeof auth.signUp>>>[];
  let before: { sessions: number; events: number };

  const counts = async () => {
    const [row] = await t.db.query(
      `SELECT (SELECT count(*)::int FROM sessions) AS sessions, (SELECT count(*)::int FROM audit_events WHERE type = 'SIGN_UP') AS events`,
    );
    return row as { sessions: number; events: number };
  };

  beforeAll(async () => {
    expect(new Set(emails).size).toBe(PARALLEL);
    before = await counts();
    results = await Promise.allSettled(emails.map((email) => auth.signUp({ email, password: PASSWORD })));
  });

  it(`gives one account and ${PARALLEL - 1} ALREADY_EXISTS`, () => {
    const outcomes = results.map(reasonOf);
    expect(outcomes.filter((o) => o === "OK")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "AlreadyExists/IDENTIFIER_TAKEN")).toHaveLength(PARALLEL - 1);
  });

  it("leaves exactly one user row, one session and one SIGN_UP event", async () => {
    const users = await t.db.query(`SELECT id, email FROM users WHERE lower(email) = 'signuprace@example.com'`);
    expect(users).toHaveLength(1);
    const winner = results.find((r) => r.status === "fulfilled")!.value;
    expect(users[0].id).toBe(winner.user!.id);
    expect(emails.map((e) => e.toLowerCase())).toContain(users[0].email.toLowerCase());
    expect(await counts()).toEqual({ sessions: before.sessions + 1, events: before.events + 1 });
  });

  it("the account logs in under any spelling", async () => {
    const res = await auth.login({ identifier: emails[PARALLEL - 1]!, password: PASSWORD });
    expect(res.user?.id).toBe(results.find((r) => r.status === "fulfilled")!.value.user!.id);
  });
});
