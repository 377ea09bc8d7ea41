// gen/ must be exactly what `npm run generate` makes from proto/ today: regenerate into a
// temporary directory with the project's own buf.gen.yaml and compare byte for byte.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "../..");
const bin = path.join(root, "node_modules/.bin");
// As `npm run` does, so buf finds the local protoc-gen-es plugin.
const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` };

function buf(...args: string[]) {
  return run(path.join(bin, "buf"), args, { cwd: root, env, timeout: 45_000 });
}

/** Every file under `dir`, as paths relative to it, sorted. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

describe("generated code", () => {
  let scratch: string;
  let fresh: string;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), "identity-gen-"));
    // -o prefixes the template's `out: gen`, so this writes <scratch>/gen exactly as `npm run generate` writes gen/.
    await buf("generate", "--template", "buf.gen.yaml", "-o", scratch);
    fresh = path.join(scratch, "gen");
    await buf("build", "-o", path.join(fresh, "descriptor.binpb"));
  }, 60_000);
  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("gen/ holds exactly the files generation makes", () => {
    const committed = listFiles(path.join(root, "gen"));
    expect(committed).toEqual(listFiles(fresh));
    expect(committed).toEqual(expect.arrayContaining(["descriptor.binpb", "identity/v1/token_service_pb.ts", "google/rpc/error_details_pb.ts"]));
  });

  it("every generated file is byte-for-byte up to date (run `npm run generate`)", () => {
    const stale = listFiles(fresh).filter((file) => !readFileSync(path.join(fresh, file)).equals(readFileSync(path.join(root, "gen", file))));
    expect(stale, "stale files in gen/; run `npm run generate`").toEqual([]);
  });

  it("buf lint passes", async () => {
    const { stdout, stderr } = await buf("lint");
    expect(stdout + stderr).toBe("");
  });
});
