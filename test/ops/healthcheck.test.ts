// The Dockerfile's HEALTHCHECK command, run as the container would run it (node -e <script>, with
// the container's HTTP_PORT and TLS variables) against a real service: plaintext and HTTPS
// gateways are healthy, a port nobody listens on is not.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createTestPki } from "../support/certificates.js";
import { freePort } from "../support/ports.js";
import { prepared, setupService } from "../support/setup.js";

const run = promisify(execFile);

/** The HEALTHCHECK's CMD as an argv (its exec form, JSON). */
function healthcheckArgv(): string[] {
  const dockerfile = readFileSync("Dockerfile", "utf8");
  const match = /^HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile);
  if (!match) throw new Error("no HEALTHCHECK ... CMD [...] in the Dockerfile");
  return JSON.parse(match[1]!) as string[];
}

/** The probe's exit code with `env` as the container's environment. */
async function probe(env: Record<string, string>): Promise<number> {
  const [command, ...args] = healthcheckArgv();
  expect(command).toBe("node");
  try {
    await run(process.execPath, args, { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 10_000 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

const port = (url: string) => new URL(url).port;

describe("the Dockerfile HEALTHCHECK", () => {
  const plain = setupService();

  it("probes liveness (/healthz) on the plaintext gateway, and fails when nothing answers", async () => {
    expect(healthcheckArgv().join(" ")).toContain("/healthz");
    expect(await probe({ HTTP_PORT: port(plain.httpUrl) })).toBe(0);
    expect(await probe({ HTTP_PORT: String(await freePort()) })).toBe(1);
  });
});

describe("the Dockerfile HEALTHCHECK with TLS", () => {
  const files = prepared(
    () => {
      const pki = createTestPki();
      const ca = pki.ca("healthcheck-ca");
      return { pki, server: pki.server(ca, "identity-healthcheck") };
    },
    ({ pki }) => pki.remove(),
  );
  const secure = setupService(() => ({ env: { TLS_CERT_FILE: files().server.certFile, TLS_KEY_FILE: files().server.keyFile } }));

  it("speaks HTTPS to a gateway with TLS_CERT_FILE", async () => {
    expect(secure.httpUrl.startsWith("https:")).toBe(true);
    const env = { HTTP_PORT: port(secure.httpUrl), TLS_CERT_FILE: files().server.certFile };
    expect(await probe(env)).toBe(0);
    // Without the TLS variable the probe speaks plain HTTP to an HTTPS port: unhealthy.
    expect(await probe({ HTTP_PORT: port(secure.httpUrl) })).toBe(1);
  });
});
