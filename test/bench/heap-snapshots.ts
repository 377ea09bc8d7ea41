// What grows the service's heap under VerifyToken load (issue 14, item 5): two heap snapshots of
// the running service (node --heapsnapshot-signal), the first after 10 s of load and the second
// after 40 s more, and what each kind of object added in between. A snapshot is taken after a
// full collection, so it shows the live heap: growth of the RSS without growth here is garbage
// V8 has not collected yet (HEAP_GROWING_PERCENT), not a leak.
//   npx tsx test/bench/heap-snapshots.ts      (about 2 minutes; h2load, embedded PostgreSQL)
import { readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { TokenService, VerifyTokenRequestSchema } from "../../gen/identity/v1/token_service_pb.js";
import { runCleanups } from "./cleanup.js";
import { BENCH_SERVICE_KEY, checkedVerify, login } from "./clients.js";
import { startEnvironment } from "./environment.js";
import { grpcFrame, h2load } from "./h2load.js";

process.env.BENCH_SERVICE_ENV = `${process.env.BENCH_SERVICE_ENV ?? ""} NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2`;
const snapshots = () => readdirSync(".").filter((f) => f.endsWith(".heapsnapshot")).sort();
for (const file of snapshots()) rmSync(file);

const env = await startEnvironment(undefined);
const { accessToken } = await login(env.clients, env.emails[0]!);
const expectedBodyBytes = (await checkedVerify(env.clients, accessToken, true)).length + 5;
const body = grpcFrame(toBinary(VerifyTokenRequestSchema, create(VerifyTokenRequestSchema, { token: accessToken })));
const url = `http://${env.serviceGrpc}/${TokenService.typeName}/${TokenService.method.verifyToken.name}`;
const load = (durationSec: number) =>
  h2load({ url, body, headers: { "content-type": "application/grpc", te: "trailers", "x-service-key": BENCH_SERVICE_KEY }, clients: 8, streams: 32, durationSec, expectedBodyBytes, workDir: env.workDir });

async function snapshot(): Promise<string> {
  const before = snapshots().length;
  process.kill(env.service.child.pid!, "SIGUSR2");
  while (snapshots().length === before) await new Promise((r) => setTimeout(r, 200));
  const file = snapshots().at(-1)!;
  // Written while we wait: done once its size stops changing.
  let size = -1;
  for (let now = 0; now !== size; await new Promise((r) => setTimeout(r, 500))) [size, now] = [now, readFileSync(file).length];
  return file;
}

interface Summary {
  readonly total: number;
  readonly byKind: Map<string, { count: number; bytes: number }>;
}

function summarize(file: string): Summary {
  const snap = JSON.parse(readFileSync(file, "utf8")) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const [type, name, selfSize] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [number, number, number];
  const types = snap.snapshot.meta.node_types[0];
  const byKind = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const t = types[snap.nodes[i + type]!]!;
    const kind = t === "object" || t === "closure" ? snap.strings[snap.nodes[i + name]!]! : `(${t})`;
    const bytes = snap.nodes[i + selfSize]!;
    total += bytes;
    const entry = byKind.get(kind) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += bytes;
    byKind.set(kind, entry);
  }
  return { total, byKind };
}

try {
  await load(10);
  const first = await snapshot();
  const run = await load(40);
  const second = await snapshot();
  const [a, b] = [summarize(first), summarize(second)];
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`live heap: ${mib(a.total)} MiB after 10 s of VerifyToken load, ${mib(b.total)} MiB after 40 s more (${Math.round(run.requestsPerSec)} req/s, ${run.succeeded} calls)`);
  console.log("what grew most in between (kind, objects, KiB, KiB now):");
  const grown = [...b.byKind].map(([kind, now]) => ({ kind, count: now.count - (a.byKind.get(kind)?.count ?? 0), bytes: now.bytes - (a.byKind.get(kind)?.bytes ?? 0), now: now.bytes }));
  for (const g of grown.sort((x, y) => y.bytes - x.bytes).slice(0, 12)) {
    console.log(`  ${g.kind.slice(0, 48).padEnd(50)}${String(g.count).padStart(8)}${(g.bytes / 1024).toFixed(0).padStart(8)}${(g.now / 1024).toFixed(0).padStart(10)}`);
  }
  console.log(`snapshots: ${path.resolve(first)}, ${path.resolve(second)} (open them in Chrome DevTools, Memory tab)`);
} finally {
  await runCleanups();
}
