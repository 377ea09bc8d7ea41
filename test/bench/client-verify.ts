// Issue 13, item 6: the client library in local mode, as a backend runs it. Measured in the
// bench process, on one core: how many tokens it verifies per second against the raw Ed25519
// verify rate of node:crypto (the floor of any check that looks at the signature), and how soon
// a logout reaches it: from the Logout RPC's answer to the client refusing the token, over
// LOGOUTS logouts, through WatchRevocations.
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { createGrpcJsTransport } from "../support/transports.js";
import { createTokenVerifier } from "../../src/client/index.js";
import { BENCH_SERVICE_KEY, login } from "./clients.js";
import type { BenchContext } from "./scenarios.js";
import { percentiles } from "./stats.js";

const LOGOUTS = 100;

/** Calls `op` back to back for `seconds`; operations per second. */
async function rate(seconds: number, op: () => unknown): Promise<number> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++) await op();
    done += 100;
  }
  return done / ((performance.now() - started) / 1000);
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function clientVerification(ctx: BenchContext): Promise<void> {
  const { accessToken } = await login(ctx.clients, ctx.emails[0]!);
  const verifier = createTokenVerifier({
    address: ctx.serviceGrpc,
    serviceKey: BENCH_SERVICE_KEY,
    mode: "local",
    issuer: ctx.config.issuer,
    audience: ctx.config.audience,
  });
  try {
    await verifier.ready(10_000);
    const first = await verifier.verify(accessToken);
    if (!first.ok) throw new Error(`the local verifier refused a fresh token: ${first.reason}`);

    // The floor: node:crypto's Ed25519 verify of the same token, with its key from the JWKS.
    const [header, payload, signature] = accessToken.split(".") as [string, string, string];
    const { keys } = await ctx.clients.tokens.getJwks({});
    const kid = (JSON.parse(Buffer.from(header, "base64url").toString()) as { kid: string }).kid;
    const jwk = keys.find((k) => k.kid === kid)!;
    const publicKey = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
    const signed = Buffer.from(`${header}.${payload}`);
    const sig = Buffer.from(signature, "base64url");
    const seconds = ctx.durations.measure;
    await rate(ctx.durations.warmup, () => verifySignature(null, signed, publicKey, sig));
    const raw = await rate(seconds, () => verifySignature(null, signed, publicKey, sig));
    await rate(ctx.durations.warmup, () => verifier.verify(accessToken));
    const local = await rate(seconds, () => verifier.verify(accessToken));
    ctx.record({
      key: "clientLocalVerify",
      label: "client library, local mode: verify(token), one core",
      value: local,
      unit: "tokens/s",
      baseline: { label: "raw Ed25519 verify (node:crypto), same core", value: raw },
      detail: `awaited one after another for ${seconds} s in the bench process, the same token: its signature is checked once and kept until it expires (as the service's verifier does), its revocation on every call; no RPC per token`,
    });

    // Propagation: each logout from the Logout RPC's answer to the first refusal, the Logout
    // made on the instance the client follows, then on another instance of the same database
    // (the TLS one), whose revocation travels by PostgreSQL NOTIFY first.
    const tls = await ctx.startTls();
    const other = createGrpcJsTransport(tls.serviceGrpc, grpc.credentials.createSsl(readFileSync(tls.certFile)));
    try {
      const elsewhere = createClient(AuthService, other);
      for (const [where, auth, label] of [
        ["Same", ctx.clients.auth, "on the instance it follows"],
        ["Cross", elsewhere, "on another instance (NOTIFY)"],
      ] as const) {
        const samples: number[] = [];
        const fromSent: number[] = [];
        let refusedBeforeAnswer = 0;
        for (let i = 0; i < LOGOUTS; i++) {
          const session = await login(ctx.clients, ctx.emails[i % ctx.emails.length]!);
          if (!(await verifier.verify(session.accessToken)).ok) throw new Error("the local verifier refused a fresh session's token");
          const sent = performance.now();
          await auth.logout({}, { headers: { authorization: `Bearer ${session.accessToken}` } });
          const acknowledged = performance.now();
          if (!(await verifier.verify(session.accessToken)).ok) refusedBeforeAnswer++;
          while ((await verifier.verify(session.accessToken)).ok) {
            if (performance.now() - acknowledged > 10_000) throw new Error("a logout did not reach the local verifier within 10 s");
            await nextTurn();
          }
          const refused = performance.now();
          samples.push(refused - acknowledged);
          fromSent.push(refused - sent);
        }
        const p = percentiles(samples);
        const sentP = percentiles(fromSent);
        const detail = `${LOGOUTS} logouts ${label}, one after another, each from the Logout answer to the client's first refusal (WatchRevocations); max ${p.max.toFixed(1)} ms; ${refusedBeforeAnswer} of ${LOGOUTS} already refused when the answer arrived; from the Logout request's start: p50 ${sentP.p50.toFixed(2)} ms, p99 ${sentP.p99.toFixed(2)} ms`;
        ctx.record({ key: `clientPropagation${where}P50`, label: `logout ${label} reaching a local-mode client, p50`, value: p.p50, unit: "ms", target: { max: 1000 }, detail });
        ctx.record({ key: `clientPropagation${where}P99`, label: `logout ${label} reaching a local-mode client, p99`, value: p.p99, unit: "ms", target: { max: 1000 }, detail });
      }
    } finally {
      other.close();
    }
  } finally {
    verifier.close();
  }
}
