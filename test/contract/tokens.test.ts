// TokenService.RefreshToken, RevokeToken and GetJwks over every transport.
import { Code } from "@connectrpc/connect";
import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { InactiveReason, TokenService, TokenTypeHint } from "../../gen/identity/v1/token_service_pb.js";
import { auditRows, bearer, login, sessionRows, signUp } from "../support/accounts.js";
import { expectError } from "../support/errors.js";
import { transportNames } from "../support/transports.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe.each(transportNames)("TokenService over %s", (name) => {
  const { auth, tokens } = t.clients(name);

  it("RefreshToken rotates: a new pair for the same session, the old refresh token spent", async () => {
    const account = await signUp(auth, "rotate");
    const first = (await tokens.refreshToken({ refreshToken: account.tokens.refreshToken })).tokens!;
    expect(first.sessionId).toBe(account.tokens.sessionId);
    expect(first.refreshToken).not.toBe(account.tokens.refreshToken);
    expect(first.accessToken).not.toBe(account.tokens.accessToken);
    expect(first.tokenType).toBe("Bearer");
    expect(await t.verify(first.accessToken)).toMatchObject({ active: true, userId: account.userId, sessionId: account.tokens.sessionId });

    const second = (await tokens.refreshToken({ refreshToken: first.refreshToken })).tokens!;
    expect(second.sessionId).toBe(account.tokens.sessionId);
    const rows = await t.db.query(
      `SELECT used_at FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at, id`,
      [account.tokens.sessionId],
    );
    expect(rows.map((r: { used_at: Date | null }) => r.used_at !== null)).toEqual([true, true, false]);
  });

  it("RefreshToken reuse is REFRESH_TOKEN_REUSED and revokes the whole session, audited once", async () => {
    const account = await signUp(auth, "reuse");
    const first = (await tokens.refreshToken({ refreshToken: account.tokens.refreshToken })).tokens!;
    const latest = (await tokens.refreshToken({ refreshToken: first.refreshToken })).tokens!;
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_REUSED" });

    await expectError(tokens.refreshToken({ refreshToken: latest.refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_INVALID" });
    for (const accessToken of [account.tokens.accessToken, first.accessToken, latest.accessToken]) {
      expect(await t.verify(accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
    }
    expect((await sessionRows(t.db, account.userId)).map((r) => r.revoke_reason)).toEqual(["refresh_token_reuse"]);
    // Presenting it once more still fails, without a second audit event.
    await expectError(tokens.refreshToken({ refreshToken: first.refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_REUSED" });
    const reused = (await auditRows(t.db, account.userId)).filter((e) => e.type === "REFRESH_TOKEN_REUSED");
    expect(reused).toEqual([{ type: "REFRESH_TOKEN_REUSED", session_id: account.tokens.sessionId, details: {} }]);
  });

  it("RefreshToken refuses empty, unknown and ended-session tokens, changing nothing", async () => {
    const account = await signUp(auth, "refresh-bad");
    const ended = await login(auth, account.email);
    await auth.logout({}, bearer(ended.accessToken));
    await t.expectUnchanged(async () => {
      await expectError(tokens.refreshToken({ refreshToken: "" }), { code: Code.InvalidArgument, fields: ["refresh_token"] });
      for (const refreshToken of ["x".repeat(43), account.tokens.accessToken, ended.refreshToken, ended.refreshToken]) {
        await expectError(tokens.refreshToken({ refreshToken }), { code: Code.Unauthenticated, reason: "REFRESH_TOKEN_INVALID" });
      }
    });
    expect((await t.verify(account.tokens.accessToken)).active).toBe(true);
  });

  it("RevokeToken with an access token ends its session", async () => {
    const account = await signUp(auth, "revoke-access");
    const other = await login(auth, account.email);
    await tokens.revokeToken({ token: account.tokens.accessToken, tokenTypeHint: TokenTypeHint.ACCESS_TOKEN });

    expect(await t.verify(account.tokens.accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated });
    expect((await t.verify(other.accessToken)).active).toBe(true);
    expect((await auditRows(t.db, account.userId)).at(-1)).toMatchObject({
      type: "SESSION_REVOKED",
      session_id: account.tokens.sessionId,
      details: { via: "revoke_token" },
    });
  });

  it("RevokeToken with a refresh token ends its session", async () => {
    const account = await signUp(auth, "revoke-refresh");
    await tokens.revokeToken({ token: account.tokens.refreshToken });

    expect(await t.verify(account.tokens.accessToken)).toMatchObject({ active: false, reason: InactiveReason.SESSION_REVOKED });
    await expectError(tokens.refreshToken({ refreshToken: account.tokens.refreshToken }), { code: Code.Unauthenticated });
    expect((await sessionRows(t.db, account.userId)).map((r) => r.revoke_reason)).toEqual(["revoked"]);
  });

  it("RevokeToken succeeds for unknown or spent tokens without changing anything, and needs a token", async () => {
    const account = await signUp(auth, "revoke-unknown");
    await tokens.revokeToken({ token: account.tokens.refreshToken });
    await t.expectUnchanged(async () => {
      for (const token of ["x".repeat(43), "a.b.c", account.tokens.accessToken, account.tokens.refreshToken]) {
        await tokens.revokeToken({ token });
      }
      await expectError(tokens.revokeToken({ token: "" }), { code: Code.InvalidArgument, fields: ["token"] });
    });
  });

  it("GetJwks matches the gateway's JWKS document and verifies access tokens", async () => {
    const account = await signUp(auth, "jwks");
    const { keys } = await tokens.getJwks({});
    const document = (await (await fetch(`${t.httpUrl}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
    expect(keys.map(({ kty, crv, x, kid, alg, use }) => ({ kty, crv, x, kid, alg, use }))).toEqual(document.keys);
    for (const key of keys) expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });

    const header = decodeProtectedHeader(account.tokens.accessToken);
    expect(header).toMatchObject({ alg: "EdDSA", typ: "at+jwt" });
    const jwk = keys.find((k) => k.kid === header.kid);
    expect(jwk, `kid ${header.kid} in the JWKS`).toBeDefined();
    const { payload } = await jwtVerify(account.tokens.accessToken, await importJWK({ kty: jwk!.kty, crv: jwk!.crv, x: jwk!.x }, "EdDSA"));
    expect(payload).toMatchObject({ sub: account.userId, sid: account.tokens.sessionId });
  });
});
