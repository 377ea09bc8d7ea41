// Issue 18: lean packaging, read from the files themselves. One Node version (24) in the
// Dockerfile's stages, .nvmrc and the engines range; a runtime stage without a compiler and with
// tini as PID 1; a .dockerignore that keeps local installs, builds, development secrets and
// history out of the build context but lets in what the build stage copies.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

const dockerfile = readFileSync("Dockerfile", "utf8").replace(/\\\n/g, " ");
const stages = dockerfile.split(/^FROM /m).slice(1);

it("builds and runs on Node 24, as .nvmrc says, within package.json's engines", () => {
  const images = stages.map((stage) => stage.split(/\s/)[0]);
  expect(images.length).toBeGreaterThanOrEqual(2);
  for (const image of images) expect(image).toMatch(/^node:24-/);
  expect(readFileSync(".nvmrc", "utf8").trim()).toBe("24");
  const engines = (JSON.parse(readFileSync("package.json", "utf8")) as { engines: { node: string } }).engines.node;
  expect(engines).toBe(">=20.19 <25");
});

it("runs under tini, with no compiler toolchain in the runtime stage", () => {
  const runtime = stages.at(-1)!;
  expect(runtime).toMatch(/apt-get install -y --no-install-recommends tini/);
  expect(runtime).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
  expect(runtime).toMatch(/^CMD \["node", "--enable-source-maps", "dist\/src\/main.js"\]$/m);
  for (const tool of ["g++", "gcc", "make", "python3", "build-essential"]) expect(runtime, tool).not.toMatch(new RegExp(`install[^\\n]*\\s${tool.replace(/\+/g, "\\+")}(\\s|$)`, "m"));
});

it("keeps node_modules, dist, .data, .git and secrets out of the build context, and lets in what the build copies", () => {
  const ignored = readFileSync(".dockerignore", "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  for (const entry of ["node_modules", "dist", ".data", ".git", ".env"]) expect(ignored, entry).toContain(entry);
  const copied = [...stages[0]!.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).slice(0, -1));
  expect(copied.length).toBeGreaterThan(3);
  for (const source of copied) expect(ignored, source).not.toContain(source);
});
