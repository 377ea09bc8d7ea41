// Where a V8 CPU profile (node --cpu-prof) spends its time: self time by function and by
// package or source file. `npm run bench -- --profile` runs it on the service's profile;
// by hand: npx tsx test/bench/profile-summary.ts <file.cpuprofile> [top].
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** node_modules/<package>, a file of this repository, node:internal, or a V8 pseudo-frame. */
function area(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return url;
  const repo = /\/(src|gen|test)\/(.*)$/.exec(url);
  return repo ? `${repo[1]}/${repo[2]}` : url;
}

const PSEUDO = new Set(["(root)", "(idle)", "(program)", "(garbage collector)"]);

export function summarize(file: string, top = 20): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const label = (n: ProfileNode) => {
    const { functionName, url, lineNumber } = n.callFrame;
    return `${functionName || "(anonymous)"}  ${area(url, functionName)}${url ? `:${lineNumber + 1}` : ""}`;
  };

  let idle = 0;
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const byArea = new Map<string, number>();
  const add = (m: Map<string, number>, key: string, us: number) => m.set(key, (m.get(key) ?? 0) + us);
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id)!;
    if (node.callFrame.functionName === "(idle)") return void (idle += us);
    add(self, label(node), us);
    add(byArea, area(node.callFrame.url, node.callFrame.functionName), us);
    // Each function once per sample, however often it recurs on the stack.
    const seen = new Set<string>();
    for (let n: ProfileNode | undefined = node; n; n = byId.get(parent.get(n.id) ?? -1)) {
      const key = label(n);
      if (!PSEUDO.has(n.callFrame.functionName) && !seen.has(key)) {
        seen.add(key);
        add(inclusive, key, us);
      }
    }
  });
  const busy = [...self.values()].reduce((a, b) => a + b, 0);
  const list = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`);
  return [
    `${((busy + idle) / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy; percentages of busy time`,
    "",
    "self time by package / file:",
    ...list(byArea),
    "",
    "self time by function:",
    ...list(self),
    "",
    "inclusive time by function (the function and what it calls):",
    ...list(inclusive),
  ].join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error("usage: tsx test/bench/profile-summary.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  console.log(summarize(file, top ? Number(top) : undefined));
}
