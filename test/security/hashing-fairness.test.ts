// Password hashing is a resource everyone shares. One address flooding SignUp must not take it
// from other people: the hasher admits at most a small share per client address and starts
// waiting hashes round-robin between addresses, so logins from other addresses still succeed.
import http from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/identity/v1/auth_service_pb.js";
import { AppError } from "../../src/domain/errors.js";
import { createFairGate, perClientShare } from "../../src/domain/accounts/passwords.js";
import { PASSWORD, uniqueEmail } from "../support/accounts.js";
import { setupService } from "../support/setup.js";

/** Work that finishes when the test says so. */
function controllable() {
  const started: string[] = [];
  const finishers = new Map<string, () => void>();
  const job = (name: string) => () =>
    new Promise<string>((resolve) => {
      started.push(name);
      finishers.set(name, () => resolve(name));
    });
  const finish = async (name: string) => {
    finishers.get(name)!();
    await new Promise((r) => setImmediate(r));
  };
  return { started, job, finish };
}

describe("the fair hashing gate", () => {
  it("once the queue is half full, sheds a client holding its share at once, while another client is still admitted", async () => {
    const limits = { maxConcurrent: 1, maxQueue: 8 };
    expect(perClientShare(limits)).toBe(2);
    const gate = createFairGate(limits);
    const { started, job, finish } = controllable();
    // Below half a queue (4 waiting), "a" is served beyond its share: nobody else wants the room.
    const admitted = ["a1", "a2", "a3", "a4", "a5"].map((n) => gate("a", job(n)));
    await expect(gate("a", job("a6"))).rejects.toMatchObject({ reason: "OVERLOADED", retryAfterMs: 1_000 });
    const b1 = gate("b", job("b1"));
    // "b" goes next, not after the whole of "a".
    await finish("a1");
    await finish("a2");
    expect(started).toEqual(["a1", "a2", "b1"]);
    for (const name of ["b1", "a3", "a4", "a5"]) await finish(name);
    expect(await Promise.all([...admitted, b1])).toEqual(["a1", "a2", "a3", "a4", "a5", "b1"]);
    // Its place is free again once its hashes are done.
    const a7 = gate("a", job("a7"));
    await finish("a7");
    expect(await a7).toBe("a7");
  });

  it("starts waiting work round-robin between clients, not first come first served", async () => {
    const gate = createFairGate({ maxConcurrent: 1, maxQueue: 64 }); // a share of 8
    const { started, job, finish } = controllable();
    const all = [...["a1", "a2", "a3", "a4"].map((n) => gate("a", job(n))), gate("b", job("b1")), gate("c", job("c1")), gate("b", job("b2"))];
    for (const name of ["a1", "a2", "b1", "c1", "a3", "b2", "a4"]) {
      expect(started.at(-1)).toBe(name);
      await finish(name);
    }
    await Promise.all(all);
    expect(started).toEqual(["a1", "a2", "b1", "c1", "a3", "b2", "a4"]);
  });

  it("still sheds when the whole queue is full", async () => {
    const gate = createFairGate({ maxConcurrent: 1, maxQueue: 2 });
    const { job, finish } = controllable();
    const admitted = [gate("a", job("a1")), gate("b", job("b1")), gate("c", job("c1"))];
    const refused = await gate("d", job("d1")).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).message).toMatch(/queue full/);
    // The queue depth the metrics export: what waits, not what runs or was shed.
    expect(gate.waiting()).toBe(2);
    for (const name of ["a1", "b1", "c1"]) await finish(name);
    await Promise.all(admitted);
    expect(gate.waiting()).toBe(0);
  });
});

describe("a SignUp flood from one address", () => {
  const FLOOD_WORKERS = 200;
  const LOGIN_ADDRESSES = 20;
  const LOGINS_MS = 2_500;

  const agents: http.Agent[] = [];
  function connectFrom(localAddress: string, httpUrl: string) {
    const agent = new http.Agent({ keepAlive: true, localAddress });
    agents.push(agent);
    return createClient(AuthService, createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1", nodeOptions: { agent, localAddress } }));
  }
  afterAll(() => agents.forEach((a) => a.destroy()));

  function failureOf(err: unknown): string {
    const error = ConnectError.from(err);
    return `${Code[error.code]}/${error.findDetails(ErrorInfoSchema)[0]?.reason ?? "?"}`;
  }

  const t = setupService({
    env: {
      // The default argon2 cost (about 25 ms here) and one hash at a time: hashing, not the
      // database or the event loop, is what the flood exhausts. No sign-up limit either, so
      // that only the hashing gate stands between the flood and other people's logins.
      // The flood is shed once it holds its share (8) and the queue is half full (32), so it
      // never holds more than 33 places; with 20 logins the gate never holds more than 53 of
      // its 65, so no login can be shed. Before the fair gate, the flood filled the queue and
      // most login attempts were shed as OVERLOADED.
      HASH_CONCURRENCY: "1",
      HASH_QUEUE_LIMIT: "64",
      SIGNUP_MAX_PER_IP_PER_HOUR: "1000000",
      SIGNUP_MAX_PER_HOUR: "1000000",
    },
  });

  it("leaves logins from 20 other addresses succeeding at least 90% of the time", async () => {
    const people = await Promise.all(
      Array.from({ length: LOGIN_ADDRESSES }, async (_, i) => {
        const client = connectFrom(`127.0.0.${10 + i}`, t.httpUrl);
        const email = uniqueEmail(`person-${i}`);
        await client.signUp({ email, password: PASSWORD });
        return { client, email };
      }),
    );

    const attacker = connectFrom("127.0.0.2", t.httpUrl);
    let flooding = true;
    const flood = { created: 0, refused: new Map<string, number>() };
    const logins = { ok: 0, failed: new Map<string, number>(), people: new Set<string>() };
    const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

    const floodWorkers = Array.from({ length: FLOOD_WORKERS }, async () => {
      while (flooding) {
        try {
          await attacker.signUp({ email: uniqueEmail("flood"), password: PASSWORD });
          flood.created++;
        } catch (err) {
          count(flood.refused, failureOf(err));
        }
      }
    });
    // The logins start once the flood has saturated hashing (it is being shed).
    const saturatedBy = Date.now() + 20_000;
    while (!flood.refused.has("ResourceExhausted/OVERLOADED") && Date.now() < saturatedBy) await new Promise((r) => setTimeout(r, 20));
    expect(flood.refused.has("ResourceExhausted/OVERLOADED"), "the flood never saturated hashing").toBe(true);
    const deadline = Date.now() + LOGINS_MS;
    const loginWorkers = people.map(async ({ client, email }) => {
      while (Date.now() < deadline) {
        try {
          const response = await client.login({ identifier: email, password: PASSWORD });
          expect(response.result.case).toBe("tokens");
          logins.ok++;
          logins.people.add(email);
        } catch (err) {
          count(logins.failed, failureOf(err));
        }
      }
    });
    await Promise.all(loginWorkers);
    flooding = false;
    await Promise.all(floodWorkers);

    const failed = [...logins.failed.values()].reduce((a, b) => a + b, 0);
    const summary = { flood: { created: flood.created, refused: Object.fromEntries(flood.refused) }, logins: { ok: logins.ok, failed: Object.fromEntries(logins.failed) } };
    // Everyone got in (each started a login before the deadline), and almost every attempt did.
    expect(logins.people.size, JSON.stringify(summary)).toBe(LOGIN_ADDRESSES);
    expect(logins.ok / (logins.ok + failed), JSON.stringify(summary)).toBeGreaterThanOrEqual(0.9);
  }, 60_000);
});
