// createTokenVerifier: how a backend verifies the bearer tokens it receives.
//
// remote: VerifyToken with a short deadline; results cached per (audience, token) in a bounded
//   LRU, never past the token's `exp` nor `cacheTtlMs` (a revocation is seen within cacheTtlMs).
// local: follows WatchRevocations (the keys and every revocation that can still matter) and
//   verifies from memory, no call per token. While the stream is down the memory is trusted for
//   `staleAfterMs`; after that each token goes to VerifyToken (remote, uncached), and when that
//   fails too the answer is `unavailable`: it fails closed. The stream reconnects with its last
//   cursor after an exponential backoff with jitter; a watchdog ends a stream that has been
//   silent for two heartbeats and a second. An unknown `kid` is final while the stream is live:
//   the service publishes a key (and so streams it) before it signs with it.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { KeyObject } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Registry } from "prom-client";
import { InactiveReason as InactiveReasonEnum, SubjectKind, type VerifyTokenResponse, type WatchRevocationsResponse } from "../../gen/identity/v1/token_service_pb.js";
import { authTimeOf, checkToken, importKey, unverifiedPayload, type Checked } from "./jwt.js";
import { createClientMetrics } from "./metrics.js";
import { applyPolicy } from "./policy.js";
import { connect, type ClientTls, type Connection } from "./rpc.js";
import { INACTIVE_REASONS, type InactiveReason, type Policy, type Principal, type VerifyResult } from "./types.js";

export interface TokenVerifierOptions {
  /** host:port of the identity service's gRPC port. */
  readonly address: string;
  /** A service key holding `tokens.verify` (sent as `x-service-key`); or authenticate with a client certificate in `tls`. */
  readonly serviceKey?: string;
  /** TLS to the gRPC port; plaintext when absent. */
  readonly tls?: ClientTls;
  readonly mode: "local" | "remote";
  /**
   * The audience tokens must name, unless a route's policy names another. remote: empty means
   * the identity service's own (TOKEN_AUDIENCE). local: defaults to "identity", the service's
   * default TOKEN_AUDIENCE; set it when the service's differs.
   */
  readonly audience?: string;
  /**
   * The identity service's TOKEN_ISSUER; required in local mode (it is configuration, never
   * learned from the tokens or the stream).
   */
  readonly issuer?: string;
  /** VerifyToken deadline (default 1000 ms). */
  readonly timeoutMs?: number;
  /** remote: how long a result is reused (default 1000 ms, never past `exp`). */
  readonly cacheTtlMs?: number;
  /** remote: how many results are kept (default 10,000). */
  readonly cacheSize?: number;
  /**
   * local: where to follow WatchRevocations when not `address` (a load balancer configured for
   * long-lived streams, say). VerifyToken, the fallback, always goes to `address`.
   */
  readonly watchAddress?: string;
  /** local: how long the memory is trusted after the stream went down (default 5000 ms). */
  readonly staleAfterMs?: number;
  /** local: the heartbeat interval asked of the stream, whole seconds 1..60 (default 5). */
  readonly heartbeatSec?: number;
  /** local: reconnection backoff, first and largest delay (default 100 ms and 5000 ms), with jitter. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Where the client's metrics are registered (none by default). */
  readonly registry?: Registry;
}

export interface StreamState {
  /** Whether a snapshot has been received on the current stream and it is alive. */
  readonly connected: boolean;
  /** Since when the stream is down (ms since epoch), when it is. */
  readonly downSince: number | undefined;
  readonly cursor: string;
  readonly keys: number;
}

export interface TokenVerifier {
  /** An accepted principal, or a refusal with a stable reason. Never throws. */
  verify(token: string | undefined, policy?: Policy): Promise<VerifyResult>;
  /** local: resolves when the first snapshot has been applied (rejects after `timeoutMs`). remote: at once. */
  ready(timeoutMs?: number): Promise<void>;
  /** local: the stream's state, for health checks. */
  readonly stream: StreamState | undefined;
  close(): void;
}

/** Clock skew tolerated past `exp`, as the service's verifier (5 s). */
const CLOCK_TOLERANCE_MS = 5_000;

const REASONS: ReadonlySet<string> = new Set(INACTIVE_REASONS);

/** A VerifyToken answer as the local check's. */
export function fromResponse(token: string, response: VerifyTokenResponse): Checked {
  if (!response.active) {
    const name = InactiveReasonEnum[response.reason];
    return { active: false, reason: name && REASONS.has(name) ? (name as InactiveReason) : "MALFORMED" };
  }
  const iat = response.issueTime ? Number(response.issueTime.seconds) : 0;
  const base = {
    tokenId: response.tokenId,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(response.expireTime ? timestampMs(response.expireTime) : 0),
  };
  let principal: Principal;
  if (response.subjectKind === SubjectKind.SERVICE) {
    principal = { kind: "service", ...base, subject: `service:${response.serviceName}`, service: response.serviceName, scope: [...response.scope] };
  } else {
    // `auth_time` from the answer; from an older service without it, from the payload the service has just verified.
    const authTime = response.authTime ? new Date(timestampMs(response.authTime)) : authTimeOf(unverifiedPayload(token), iat);
    principal = {
      kind: "user", ...base, subject: response.userId, userId: response.userId, sessionId: response.sessionId, role: response.role,
      username: response.username, amr: [...response.amr], authTime,
    };
  }
  return { active: true, principal };
}

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  if (options.mode === "local" && !options.issuer) throw new Error("createTokenVerifier: local mode needs `issuer` (the identity service's TOKEN_ISSUER)");
  const timeoutMs = options.timeoutMs ?? 1000;
  const metrics = createClientMetrics(options.registry);
  const connection = connect(options.address, options.serviceKey, options.tls);

  async function remote(token: string, audience: string): Promise<Checked | undefined> {
    try {
      return fromResponse(token, await connection.verifyToken(token, audience, timeoutMs));
    } catch {
      return undefined;
    }
  }

  const finish = (checked: Checked | undefined, policy: Policy | undefined): VerifyResult => {
    if (!checked) return { ok: false, reason: "unavailable" };
    if (!checked.active) return { ok: false, reason: "invalid_token", inactiveReason: checked.reason };
    return applyPolicy(checked.principal, policy, Date.now());
  };

  if (options.mode === "remote") {
    const cacheTtlMs = options.cacheTtlMs ?? 1000;
    const cache = new LRUCache<string, Checked>({ max: options.cacheSize ?? 10_000, ttlAutopurge: false });
    return {
      async verify(token, policy) {
        if (!token) return { ok: false, reason: "missing_token" };
        const audience = policy?.audience ?? options.audience ?? "";
        const key = `${audience}\n${token}`;
        let checked = cache.get(key);
        if (checked?.active && checked.principal.expiresAt.getTime() <= Date.now()) checked = undefined;
        if (!checked) {
          metrics.remote.inc({ cause: "remote" });
          checked = await remote(token, audience);
          if (checked) {
            const ttl = checked.active ? Math.min(cacheTtlMs, checked.principal.expiresAt.getTime() - Date.now()) : cacheTtlMs;
            if (ttl >= 1) cache.set(key, checked, { ttl });
          }
        }
        return finish(checked, policy);
      },
      ready: async () => {},
      stream: undefined,
      close: () => connection.close(),
    };
  }
  return createLocal(options, connection, metrics, remote, finish);
}

function createLocal(
  options: TokenVerifierOptions,
  connection: Connection,
  metrics: ReturnType<typeof createClientMetrics>,
  remote: (token: string, audience: string) => Promise<Checked | undefined>,
  finish: (checked: Checked | undefined, policy: Policy | undefined) => VerifyResult,
): TokenVerifier {
  const issuer = options.issuer!;
  const defaultAudience = options.audience || "identity";
  const staleAfterMs = options.staleAfterMs ?? 5000;
  const heartbeatSec = Math.min(60, Math.max(1, Math.round(options.heartbeatSec ?? 5)));
  const initialBackoffMs = options.backoff?.initialMs ?? 100;
  const maxBackoffMs = options.backoff?.maxMs ?? 5000;

  const keys = new Map<string, KeyObject>();
  /** Tokens whose signature and claims were checked, until they expire (revocation is checked on every call). */
  const verified = new LRUCache<string, Checked>({ max: options.cacheSize ?? 10_000, ttlAutopurge: false });
  /** sid -> revoke time (ms). */
  const sessions = new Map<string, number>();
  /** sub -> tokens issued before validAfter (whole seconds) are revoked; all when disabled. */
  const subjects = new Map<string, { validAfterSec: number; disabled: boolean; atMs: number }>();
  let retentionMs = 0;
  let cursor = "";
  let synced = false;
  let connected = false;
  let downSince: number | undefined = Date.now();
  let closed = false;
  let attempt = 0;
  let cancel: (() => void) | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  const waiters: Array<() => void> = [];
  const watchConnection = options.watchAddress ? connect(options.watchAddress, options.serviceKey, options.tls) : connection;

  function prune(nowMs: number): void {
    if (retentionMs <= 0) return;
    const limit = nowMs - retentionMs;
    for (const [id, at] of sessions) if (at < limit) sessions.delete(id);
    for (const [id, s] of subjects) if (!s.disabled && s.atMs < limit) subjects.delete(id);
  }

  function setSubject(subject: string, validAfterMs: number, disabled: boolean): void {
    const current = subjects.get(subject);
    // A later valid_after wins; a status change always comes with one (the service's rule).
    if (!current || current.atMs <= validAfterMs) subjects.set(subject, { validAfterSec: Math.floor(validAfterMs / 1000), disabled, atMs: validAfterMs });
  }

  function apply(message: WatchRevocationsResponse): void {
    const now = Date.now();
    const event = message.event;
    switch (event.case) {
      case "snapshot": {
        const s = event.value;
        keys.clear();
        for (const jwk of s.keys) {
          const key = importKey(jwk);
          if (key) keys.set(jwk.kid, key);
        }
        sessions.clear();
        subjects.clear();
        for (const r of s.sessions) sessions.set(r.sessionId, r.revokeTime ? timestampMs(r.revokeTime) : now);
        for (const r of s.subjects) setSubject(r.subject, r.validAfter ? timestampMs(r.validAfter) : now, r.disabled);
        retentionMs = s.retention ? Number(s.retention.seconds) * 1000 + Math.floor(s.retention.nanos / 1e6) : 0;
        synced = true;
        break;
      }
      case "sessionRevoked": {
        const at = event.value.revokeTime ? timestampMs(event.value.revokeTime) : now;
        sessions.set(event.value.sessionId, at);
        metrics.propagation.observe(Math.max(0, now - at) / 1000);
        break;
      }
      case "subjectTokensInvalidated": {
        const at = event.value.validAfter ? timestampMs(event.value.validAfter) : now;
        setSubject(event.value.subject, at, event.value.disabled);
        metrics.propagation.observe(Math.max(0, now - at) / 1000);
        break;
      }
      case "keyPublished": {
        const key = importKey(event.value);
        if (key) keys.set(event.value.kid, key);
        break;
      }
      case "keyRetired":
        keys.delete(event.value);
        break;
      case "heartbeat":
        prune(now);
        break;
    }
    if (message.cursor) cursor = message.cursor;
    if (synced && !connected) {
      connected = true;
      downSince = undefined;
      for (const wake of waiters.splice(0)) wake();
    }
  }

  function armWatchdog(): void {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => cancel?.(), 2 * heartbeatSec * 1000 + 1000);
    watchdog.unref();
  }

  function open(): void {
    if (closed) return;
    armWatchdog();
    cancel = watchConnection.watch(cursor, heartbeatSec, {
      message(m) {
        attempt = 0;
        armWatchdog();
        apply(m);
      },
      end() {
        clearTimeout(watchdog);
        cancel = undefined;
        if (connected) {
          connected = false;
          downSince = Date.now();
        }
        if (closed) return;
        const delay = Math.min(maxBackoffMs, initialBackoffMs * 2 ** attempt) * (0.5 + Math.random() / 2);
        attempt = Math.min(attempt + 1, 30);
        retry = setTimeout(open, delay);
        retry.unref();
      },
    });
  }
  open();

  function revoked(principal: Principal): InactiveReason | undefined {
    const subject = subjects.get(principal.subject);
    if (subject) {
      if (subject.disabled) return "USER_DISABLED";
      // A person's token: whole seconds (`iat` has no finer precision; same-second tokens fall to
      // the session check). A service token's `iat` keeps milliseconds (the service's rule).
      if (principal.kind === "service" ? principal.issuedAt.getTime() < subject.atMs : principal.issuedAt.getTime() / 1000 < subject.validAfterSec) return "TOKEN_REVOKED";
    }
    if (principal.kind === "user" && sessions.has(principal.sessionId)) return "SESSION_REVOKED";
    return undefined;
  }

  return {
    async verify(token, policy) {
      if (!token) return { ok: false, reason: "missing_token" };
      const now = Date.now();
      const audience = policy?.audience || defaultAudience;
      const fresh = synced && (connected || (downSince !== undefined && now - downSince <= staleAfterMs));
      if (!fresh) {
        metrics.remote.inc({ cause: "fallback" });
        return finish(await remote(token, audience), policy);
      }
      metrics.local.inc();
      // A token whose signature and claims checked out is kept until it expires (as the service's
      // verifier does): the signature is checked once per token, revocation on every call.
      const cacheKey = audience === defaultAudience ? token : `${audience}\n${token}`;
      let checked = verified.get(cacheKey);
      if (checked?.active && checked.principal.expiresAt.getTime() + CLOCK_TOLERANCE_MS <= now) checked = undefined;
      if (!checked) {
        checked = checkToken(token, { issuer, audience, key: (kid) => keys.get(kid), nowMs: now });
        if (checked.active) verified.set(cacheKey, checked, { ttl: Math.max(1, checked.principal.expiresAt.getTime() + CLOCK_TOLERANCE_MS - now) });
      }
      if (checked.active) {
        const reason = revoked(checked.principal);
        if (reason) checked = { active: false, reason };
      }
      return finish(checked, policy);
    },
    ready(timeoutMs = 5000) {
      if (connected) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(wake) >>> 0, 1);
          reject(new Error("no revocation snapshot yet"));
        }, timeoutMs);
        waiters.push(wake);
      });
    },
    get stream() {
      return { connected, downSince, cursor, keys: keys.size };
    },
    close() {
      closed = true;
      clearTimeout(retry);
      clearTimeout(watchdog);
      cancel?.();
      connection.close();
      if (watchConnection !== connection) watchConnection.close();
    },
  };
}
