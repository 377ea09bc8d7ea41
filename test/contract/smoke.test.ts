import { describe, expect, it } from "vitest";
import { setupService } from "../support/setup.js";
import { transportNames } from "../support/transports.js";

const t = setupService();

describe.each(transportNames)("smoke over %s", (name) => {
  it("signs up, logs in and verifies", async () => {
    const { auth } = t.clients(name);
    const email = `smoke-${name}@example.com`;
    const signUp = await auth.signUp({ email, password: "a long enough passphrase" });
    expect(signUp.user?.email).toBe(email);
    const login = await auth.login({ identifier: email, password: "a long enough passphrase" });
    expect(login.result.case).toBe("tokens");
    const verify = await t.verify(login.result.case === "tokens" ? login.result.value.accessToken : "");
    expect(verify.active).toBe(true);
  });
});
