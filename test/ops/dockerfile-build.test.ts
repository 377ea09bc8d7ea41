// The Dockerfile's build stage, without Docker (no engine here): exactly the files its COPY lines
// bring in, dependencies installed, then its `RUN npm run build`. A build input the Dockerfile
// forgets to copy (a tsconfig the client's declarations need, say) fails here, not in the first
// image build after a release.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";

const dir = mkdtempSync(path.join(tmpdir(), "identity-docker-build-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The sources of the COPY lines of the first stage (up to the next FROM), `--from` copies excluded. */
function buildStageCopies(dockerfile: string): string[] {
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const sources: string[] = [];
  for (const line of stages[0]!.split("\n")) {
    const copy = /^COPY\s+(?!--from)(.+)$/.exec(line.trim());
    if (!copy) continue;
    const parts = copy[1]!.split(/\s+/);
    sources.push(...parts.slice(0, -1));
  }
  return sources;
}

it("builds from the files the build stage copies", () => {
  const sources = buildStageCopies(readFileSync("Dockerfile", "utf8"));
  expect(sources).toEqual(expect.arrayContaining(["package.json", "package-lock.json", "src", "gen"]));
  for (const source of sources) cpSync(source, path.join(dir, source), { recursive: true });
  // `npm ci` of the stage, from this checkout's installed tree.
  symlinkSync(path.resolve("node_modules"), path.join(dir, "node_modules"));
  execFileSync("npm", ["run", "--silent", "build"], { cwd: dir, stdio: "pipe" });
  for (const built of ["dist/src/main.js", "dist/gen/descriptor.binpb", "dist/web/app.js", "dist/client/index.js", "dist/client/types/src/client/index.d.ts"]) {
    expect(existsSync(path.join(dir, built)), built).toBe(true);
  }
});
