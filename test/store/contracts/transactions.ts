// What the transaction runner and the error classification must guarantee.
import { describe, expect, it } from "vitest";
import { QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from "typeorm";
import { classifyError, DatabaseUnavailableError, SerializationFailureError, UniqueViolationError } from "../../../src/store/index.js";
import type { StoreContext } from "../support.js";

export function transactionContract(ctx: StoreContext): void {
  describe("transactions", () => {
    it("commits every statement of a transaction together, or none when it throws", async () => {
      const { store } = ctx;
      const user = await ctx.user({ passwordHash: "before" });
      const failure = new Error("the action failed");
      await expect(store.transaction(async (tx) => {
        await store.users.rehashPassword(tx, user.id, "during");
        throw failure;
      })).rejects.toBe(failure);
      expect((await store.users.get(store.direct, user.id)).passwordHash).toBe("before");
      await store.transaction((tx) => store.users.rehashPassword(tx, user.id, "after"));
      expect((await store.users.get(store.direct, user.id)).passwordHash).toBe("after");
    });

    it("classifies database errors once: unique violation, serialization failure, unavailable; others pass unchanged", async () => {
      const { store } = ctx;
      const user = await ctx.user();
      const duplicate = await store.transaction((tx) => store.users.insert(tx, { email: user.email, username: null, phone: null, displayName: "", passwordHash: "x" })).catch((e: unknown) => e);
      expect(duplicate).toBeInstanceOf(UniqueViolationError);
      expect((duplicate as UniqueViolationError).constraint).toBe("users_email_key");
      expect(classifyError({ code: "40001", message: "could not serialize" })).toBeInstanceOf(SerializationFailureError);
      expect(classifyError({ code: "ECONNREFUSED", message: "connect ECONNREFUSED" })).toBeInstanceOf(DatabaseUnavailableError);
      expect(classifyError({ driverError: { code: "57P01" }, message: "terminating connection" })).toBeInstanceOf(DatabaseUnavailableError);
      expect(classifyError(new Error("Connection terminated unexpectedly"))).toBeInstanceOf(DatabaseUnavailableError);
      // The bounds of issue 19: statement_timeout, lock_timeout, idle-in-transaction, pg's read timeout, the pool's wait.
      for (const code of ["57014", "55P03", "25P03"]) expect(classifyError({ driverError: { code }, message: "canceled" })).toBeInstanceOf(DatabaseUnavailableError);
      expect(classifyError(new Error("Query read timeout"))).toBeInstanceOf(DatabaseUnavailableError);
      expect(classifyError(new Error("timeout exceeded when trying to connect"))).toBeInstanceOf(DatabaseUnavailableError);
      // TypeORM's own, when a transaction's connection died under it (seen in the outage test under load).
      expect(classifyError(new QueryRunnerProviderAlreadyReleasedError())).toBeInstanceOf(DatabaseUnavailableError);
      expect(classifyError(new QueryRunnerAlreadyReleasedError())).toBeInstanceOf(DatabaseUnavailableError);
      const plain = new Error("not a database error");
      expect(classifyError(plain)).toBe(plain);
    });
  });
}
