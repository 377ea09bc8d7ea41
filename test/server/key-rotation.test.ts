// Signing-key rotation with a clock the test moves: the next key is published before it signs,
// tokens of the old key verify until they expire, then the old key leaves the JWKS.
import { decodeProtectedHeader } from "jose";
import { expect, it } from "vitest";
import { InactiveReason } from "../../gen/identity/v1/token_service_pb.js";
import { ManualClock } from "../support/service.js";
import { setupService } from "../support/setup.js";

const clock = new ManualClock(new Date("2026-11-21T08:00:00Z"));
const t = setupService({ clock, env: { KEY_PUBLISH_AHEAD_SECONDS: "600", ACCESS_TOKEN_TTL_SECONDS: "300" } });

async function jwksKids(): Promise<string[]> {
  const res = await fetch(`${t.httpUrl}/.well-known/jwks.json`);
  return ((await res.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();
}

let n = 0;
async function accessToken(): Promise<string> {
  const res = await t.clients("grpc").auth.signUp({ username: `rotate-${++n}`, password: "a long enough passphrase" });
  return res.tokens!.accessToken;
}

async function verify(token: string) {
  return t.verify(token);
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;

it("publishes the new key first, signs with it later, and drops the old key after its tokens expire", async () => {
  const first = await accessToken();
  const oldKid = kidOf(first);
  expect(await jwksKids()).toEqual([oldKid]);

  const { kid: newKid } = await t.app.services.signingKeys.rotate();
  expect(newKid).not.toBe(oldKid);
  expect(await jwksKids()).toEqual([oldKid, newKid].sort());
  // Published, not signing yet.
  clock.advance(599_000);
  const lastOld = await accessToken();
  expect(kidOf(lastOld)).toBe(oldKid);

  clock.advance(2_000);
  const firstNew = await accessToken();
  expect(kidOf(firstNew)).toBe(newKid);
  // The old key's last token keeps verifying until it expires.
  expect((await verify(lastOld)).active).toBe(true);
  expect((await verify(firstNew)).active).toBe(true);

  clock.advance(306_000); // past its exp and the 5 s skew tolerance
  expect((await verify(lastOld)).reason).toBe(InactiveReason.EXPIRED);
  expect(await jwksKids()).toEqual([oldKid, newKid].sort());

  clock.advance(60_000); // past the old key's expiry (retire + TTL + 60 s margin)
  expect(await jwksKids()).toEqual([newKid]);
  expect((await verify(firstNew)).reason).toBe(InactiveReason.EXPIRED);
  const fresh = await accessToken();
  expect((await verify(fresh)).active).toBe(true);
});

it("rotates automatically once the signing key is older than the rotation interval", async () => {
  const keys = t.app.services.signingKeys;
  expect(await keys.rotateIfDue()).toBe(false);
  clock.advance(31 * 86_400_000);
  expect(await keys.rotateIfDue()).toBe(true);
  expect(await keys.rotateIfDue()).toBe(false); // one pending key is enough
  const rows = (await t.db.query(`SELECT count(*)::int AS n FROM signing_keys WHERE retires_at IS NULL`)) as Array<{ n: number }>;
  expect(rows[0]!.n).toBe(1);
});
