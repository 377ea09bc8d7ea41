// TokenService.WatchRevocations (issue 13, item 1): the keys and every revocation that can still
// matter, as a snapshot and then each change, resumable by cursor, with heartbeats, ending
// cleanly on shutdown. Spoken to with a real grpc-js client.
import { Code, createClient } from "@connectrpc/connect";
import { durationMs, durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { TokenService, type WatchRevocationsResponse } from "../../gen/identity/v1/token_service_pb.js";
import { bearer } from "../support/accounts.js";
import { createTestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { TEST_KEK, TEST_SERVICE_KEY } from "../support/service.js";
import { prepared, setupService, withService, type TestContext } from "../support/setup.js";
import { createGrpcJsTransport } from "../support/transports.js";

const WITH_KEY = { headers: { "x-service-key": TEST_SERVICE_KEY } };

/** A stream read message by message, with a deadline per wait. */
function watch(t: TestContext, request: { cursor?: string; heartbeatMs?: number } = {}, options = WITH_KEY) {
  const transport = createGrpcJsTransport(t.grpcAddress);
  const client = createClient(TokenService, transport);
  const abort = new AbortController();
  const stream = client.watchRevocations(
    { cursor: request.cursor ?? "", heartbeatInterval: request.heartbeatMs === undefined ? undefined : durationFromMs(request.heartbeatMs) },
    { ...options, signal: abort.signal },
  )[Symbol.asyncIterator]();
  const received: WatchRevocationsResponse[] = [];
  return {
    received,
    /** The next message, failing the test if none comes within `ms`. */
    async next(ms = 2_000): Promise<WatchRevocationsResponse> {
      const result = await Promise.race([stream.next(), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms))]);
      if (result === "timeout") throw new Error(`no message within ${ms} ms; received so far: ${received.map((m) => m.event.case).join(", ")}`);
      if (result.done) throw new Error("the stream ended");
      received.push(result.value);
      return result.value;
    },
    /** The next message of `kind`, skipping heartbeats and others. */
    async nextOf<K extends NonNullable<WatchRevocationsResponse["event"]["case"]>>(kind: K, ms = 2_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const message = await this.next(Math.max(1, deadline - Date.now()));
        if (message.event.case === kind) return message as WatchRevocationsResponse & { event: { case: K } };
      }
    },
    /** Resolves with how the stream ended: "ok" or the error. */
    async end(ms = 5_000): Promise<unknown> {
      const deadline = Date.now() + ms;
      try {
        for (;;) {
          const result = await Promise.race([stream.next(), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), Math.max(1, deadline - Date.now())))]);
          if (result === "timeout") return "timeout";
          if (result.done) return "ok";
        }
      } catch (err) {
        return err;
      }
    },
    close() {
      abort.abort();
      transport.close();
    },
  };
}

const cursorNumber = (cursor: string) => Number(cursor.split(".")[1]);

describe("WatchRevocations", () => {
  const t = setupService();

  it("starts with a snapshot: the JWKS, the retention, and sessions revoked before it opened", async () => {
    const before = await t.signUp("watch-before");
    await t.clients("grpc").auth.logout({}, bearer(before.tokens.accessToken));
    const stream = watch(t);
    try {
      const first = await stream.next();
      expect(first.event.case).toBe("snapshot");
      const snapshot = first.event.value as Extract<WatchRevocationsResponse["event"], { case: "snapshot" }>["value"];
      const { keys } = await t.clients("connect").tokens.getJwks({});
      expect(snapshot.keys.map((k) => k.kid).sort()).toEqual(keys.map((k) => k.kid).sort());
      expect(snapshot.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
      expect(durationMs(snapshot.retention!)).toBe((t.config.accessTokenTtlSec + 60) * 1000);
      expect(snapshot.sessions.map((s) => s.sessionId)).toContain(before.tokens.sessionId);
      expect(first.cursor).toMatch(/^[0-9a-z]+\.\d+$/);
    } finally {
      stream.close();
    }
  });

  it("streams a logout and an account deletion as they happen, with increasing cursors", async () => {
    const account = await t.signUp("watch-live");
    const stream = watch(t);
    try {
      const snapshot = await stream.next();
      await t.clients("grpc").auth.logout({}, bearer(account.tokens.accessToken));
      const revoked = await stream.nextOf("sessionRevoked", 1_000);
      expect(revoked.event.value.sessionId).toBe(account.tokens.sessionId);
      expect(cursorNumber(revoked.cursor)).toBeGreaterThan(cursorNumber(snapshot.cursor));

      const other = await t.signUp("watch-deleted");
      await t.clients("grpc").auth.deleteAccount({ password: other.password }, bearer(other.tokens.accessToken));
      const invalidated = await stream.nextOf("subjectTokensInvalidated", 1_000);
      expect(invalidated.event.value).toMatchObject({ subject: other.userId, disabled: true });
      expect(timestampMs(invalidated.event.value.validAfter!)).toBeGreaterThan(Date.now() - 10_000);
      expect(cursorNumber(invalidated.cursor)).toBeGreaterThan(cursorNumber(revoked.cursor));
    } finally {
      stream.close();
    }
  });

  it("sends heartbeats at the interval asked, and refuses one out of range", async () => {
    const stream = watch(t, { heartbeatMs: 1_000 });
    try {
      const snapshot = await stream.next();
      const started = Date.now();
      const heartbeat = await stream.nextOf("heartbeat", 2_500);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(heartbeat.cursor).toBe(snapshot.cursor);
      expect(Math.abs(timestampMs(heartbeat.event.value.time!) - Date.now())).toBeLessThan(5_000);
    } finally {
      stream.close();
    }
    for (const heartbeatMs of [0, 500, 61_000]) {
      const bad = watch(t, { heartbeatMs });
      const ended = await bad.end();
      expect(ended, `heartbeat ${heartbeatMs} ms`).toMatchObject({ code: Code.InvalidArgument });
      bad.close();
    }
  });

  it("resumes from a cursor with what was missed, and answers an unknown cursor with a snapshot", async () => {
    const account = await t.signUp("watch-resume");
    const first = watch(t);
    const snapshot = await first.next();
    first.close();
    // While nobody watches:
    await t.clients("grpc").auth.logout({}, bearer(account.tokens.accessToken));

    const resumed = watch(t, { cursor: snapshot.cursor });
    try {
      const missed = await resumed.next();
      expect(missed.event.case).toBe("sessionRevoked");
      expect(missed.event.value).toMatchObject({ sessionId: account.tokens.sessionId });
    } finally {
      resumed.close();
    }
    for (const cursor of ["elsewhere.3", `${snapshot.cursor.split(".")[0]}.999999999`, "garbage", "x".repeat(64)]) {
      const fresh = watch(t, { cursor });
      try {
        expect((await fresh.next()).event.case, cursor).toBe("snapshot");
      } finally {
        fresh.close();
      }
    }
    const tooLong = watch(t, { cursor: "x".repeat(65) });
    expect(await tooLong.end()).toMatchObject({ code: Code.InvalidArgument });
    tooLong.close();
  });

  it("streams a new signing key when one is published", async () => {
    const stream = watch(t);
    try {
      await stream.next();
      const { kid } = await t.app.services.signingKeys.rotate();
      const published = await stream.nextOf("keyPublished", 2_500);
      expect(published.event.value).toMatchObject({ kid, kty: "OKP", crv: "Ed25519" });
    } finally {
      stream.close();
    }
  });

  it("is internal: not served by the gateway", async () => {
    const client = createClient(TokenService, t.clients("connect").transport);
    const ended = await (async () => {
      try {
        for await (const _ of client.watchRevocations({}, WITH_KEY)) return "message";
        return "ok";
      } catch (err) {
        return err;
      }
    })();
    expect(ended).toMatchObject({ code: Code.Unimplemented });
  });
});

describe("WatchRevocations in production mode", () => {
  const t = setupService({ env: { NODE_ENV: "production", KEY_ENCRYPTION_KEY: TEST_KEK.toString("base64"), PUBLIC_URL: "https://id.example.com" } });

  it("needs a service credential", async () => {
    const stream = watch(t, {}, { headers: {} } as typeof WITH_KEY);
    expect(await stream.end()).toMatchObject({ code: Code.Unauthenticated });
    stream.close();
    const allowed = watch(t);
    expect((await allowed.next()).event.case).toBe("snapshot");
    allowed.close();
  });
});

describe("WatchRevocations across instances and at shutdown", () => {
  const database = prepared(createTestDatabase, (db) => db.drop());
  const a = setupService(() => ({ database: database() }));

  it("streams a logout made on another instance", async () => {
    await withService({ database: database() }, async (b) => {
      const account = await b.signUp("watch-cross");
      const stream = watch(a);
      try {
        await stream.next();
        await b.clients("grpc").auth.logout({}, bearer(account.tokens.accessToken));
        const revoked = await stream.nextOf("sessionRevoked", 1_000);
        expect(revoked.event.value.sessionId).toBe(account.tokens.sessionId);
      } finally {
        stream.close();
      }
    });
  });

  it("ends streams with OK when the server shuts down gracefully", async () => {
    await withService({ database: database() }, async (c) => {
      const stream = watch(c);
      await stream.next();
      const closing = c.service.app.servers.close(5_000);
      expect(await stream.end(3_000)).toBe("ok");
      await closing;
      stream.close();
    });
  });
});
