// The client library as a backend installs it: `import ... from "grpc-identity/client"`, resolved
// through package.json `exports` (a package may import itself by name) to the build that
// `npm run build` makes (the global setup runs it): the JavaScript in a plain Node process
// verifying a real token, and the type declarations through tsc.
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { TEST_SERVICE_KEY } from "../support/service.js";
import { setupService } from "../support/setup.js";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
const t = setupService();

describe("grpc-identity/client", () => {
  it("imports by package name in a plain Node process and verifies a token, remote and local", async () => {
    const account = await t.signUp("client-package");
    const script = `
      import { createTokenVerifier, expressMiddleware, fastifyPlugin, grpcInterceptor, connectInterceptor } from "grpc-identity/client";
      const [address, serviceKey, issuer, audience, token] = process.argv.slice(1);
      const remote = createTokenVerifier({ address, serviceKey, mode: "remote" });
      const local = createTokenVerifier({ address, serviceKey, mode: "local", issuer, audience });
      await local.ready(5000);
      const out = { remote: await remote.verify(token), local: await local.verify(token), middleware: [expressMiddleware, fastifyPlugin, grpcInterceptor, connectInterceptor].map((f) => typeof f) };
      remote.close();
      local.close();
      console.log(JSON.stringify(out));
    `;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script, t.grpcAddress, TEST_SERVICE_KEY, t.config.issuer, t.config.audience, account.tokens.accessToken], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    });
    const out = JSON.parse(stdout) as { remote: { ok: boolean; principal: { userId: string } }; local: unknown; middleware: string[] };
    expect(out.remote).toMatchObject({ ok: true, principal: { kind: "user", userId: account.userId } });
    expect(out.local).toEqual(out.remote);
    expect(out.middleware).toEqual(["function", "function", "function", "function"]);
  });

  it("has type declarations that tsc resolves by package name", async () => {
    const dir = `${root}.test-data/client-types`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      `${dir}/check.ts`,
      `import { createTokenVerifier, type Principal, type VerifyResult } from "grpc-identity/client";
const verifier = createTokenVerifier({ address: "127.0.0.1:1", mode: "remote" });
const result: Promise<VerifyResult> = verifier.verify("t", { requireAmr: ["mfa"], maxAuthAge: 300 });
export const kind = (p: Principal) => (p.kind === "user" ? p.userId : p.service);
export { result };
// @ts-expect-error: the mode is "local" or "remote"
createTokenVerifier({ address: "x", mode: "other" });
`,
    );
    const tsc = `${root}node_modules/typescript/bin/tsc`;
    const args = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--types", "node", "--skipLibCheck", `${dir}/check.ts`];
    await expect(run(process.execPath, [tsc, ...args], { cwd: root })).resolves.toBeDefined();
  }, 60_000);
});
