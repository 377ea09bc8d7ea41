// The migration that rewrites stored addresses to their canonical form (src/domain/identifiers.ts),
// so that accounts stored by the old code (local part as typed, domain as Unicode) still match
// the new comparison by equality.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { OtpChannel, OtpPurpose } from "../../gen/identity/v1/common_pb.js";
import { CanonicalEmails1763805000000 } from "../../src/db/migrations/1763805000000-CanonicalEmails.js";
import { setupService } from "../support/setup.js";

const t = setupService();

describe("CanonicalEmails migration", () => {
  it("rewrites ASCII local parts to lower case and domains to A-labels, and leaves invalid and colliding rows alone", async () => {
    const id = randomUUID().slice(0, 8);
    // As the old code stored them: the local part as typed, the domain lower-cased by toLowerCase().
    const stored = {
      mixed: `Legacy.Mixed-${id}@example.org`,
      idn: `jörg-${id}@bücher.de`,
      nonAscii: `Jörg-${id}@example.org`,
      invisible: `zero\u200Bwidth-${id}@example.org`,
      collides: `Dup-${id}@bücher.de`,
      collidesWith: `dup-${id}@xn--bcher-kva.de`,
      deleted: `Gone-${id}@example.org`,
    };
    const ids: Record<string, string> = {};
    for (const [key, email] of Object.entries(stored)) {
      const [row] = (await t.db.query(`INSERT INTO users (email, deleted_at) VALUES ($1, $2) RETURNING id`, [
        email,
        key === "deleted" ? new Date() : null,
      ])) as Array<{ id: string }>;
      ids[key] = row!.id;
    }

    const runner = t.db.createQueryRunner();
    try {
      await new CanonicalEmails1763805000000().up(runner);
    } finally {
      await runner.release();
    }

    const rows = (await t.db.query(`SELECT id, email FROM users WHERE id = ANY($1)`, [Object.values(ids)])) as Array<{ id: string; email: string }>;
    const emailOf = (key: string) => rows.find((r) => r.id === ids[key])?.email;
    expect(emailOf("mixed")).toBe(`legacy.mixed-${id}@example.org`);
    expect(emailOf("idn")).toBe(`jörg-${id}@xn--bcher-kva.de`);
    expect(emailOf("nonAscii")).toBe(`Jörg-${id}@example.org`); // already canonical: kept exactly
    expect(emailOf("invisible")).toBe(stored.invisible); // no input reaches it by email any more
    expect(emailOf("collides")).toBe(stored.collides); // its canonical form is another live account's
    expect(emailOf("collidesWith")).toBe(stored.collidesWith);
    expect(emailOf("deleted")).toBe(`gone-${id}@example.org`);

    // The rewritten account is found again, under any casing, and its codes go to the stored address.
    const { otp } = t.clients("grpc");
    const request = { channel: OtpChannel.EMAIL, destination: `LEGACY.MIXED-${id}@Example.ORG`, purpose: OtpPurpose.LOGIN };
    await otp.sendOtp(request);
    const signedIn = await otp.verifyOtp({ ...request, code: t.outbox.lastCode(`legacy.mixed-${id}@example.org`) });
    expect(signedIn).toMatchObject({ newUser: false, user: { id: ids.mixed } });
  });
});
