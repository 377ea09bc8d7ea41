// The store under test: a fresh migrated database in the run's embedded PostgreSQL, and the
// store built on it. `useStore()` registers its own hooks and returns a context whose members
// exist once the file's tests run; the contracts (contracts/*.ts, kratos's TestFlowPersister
// style) take such a context, so another backend or a wrapped store can run the same contract.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { openDatabase } from "../../src/db/data-source.js";
import { createStore, type Database, type Store, type Tx, type UserRow } from "../../src/store/index.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

export interface StoreContext {
  readonly store: Store;
  /** The raw database, to check what the store wrote. */
  readonly db: Database;
  /** A live account with a unique email address (and a password hash), for rows that need an owner. */
  user(fields?: Partial<{ email: string | null; username: string | null; phone: string | null; passwordHash: string }>): Promise<UserRow>;
  /** The rows of one raw SQL statement. */
  sql<R>(text: string, params?: unknown[]): Promise<R[]>;
}

export type StoreFactory = () => Promise<{ db: Database; store: Store; close(): Promise<void> }>;

/** The PostgreSQL store: a database of its own, migrated like production. */
export const postgresStore: StoreFactory = async () => {
  const database: TestDatabase = await createTestDatabase();
  const db = await openDatabase({ url: database.url, poolSize: 12 });
  return {
    db,
    store: createStore(db),
    async close() {
      await db.destroy();
      await database.drop();
    },
  };
};

export function useStore(factory: StoreFactory = postgresStore): StoreContext {
  let opened: Awaited<ReturnType<StoreFactory>> | undefined;
  beforeAll(async () => {
    opened = await factory();
  });
  afterAll(async () => {
    await opened?.close();
  });
  const current = () => {
    if (!opened) throw new Error("the store is opened in beforeAll");
    return opened;
  };
  return {
    get store() {
      return current().store;
    },
    get db() {
      return current().db;
    },
    user(fields = {}) {
      const { store } = current();
      return store.users.insert(store.direct, {
        email: fields.email === undefined ? `u-${randomUUID()}@example.com` : fields.email,
        username: fields.username ?? null,
        phone: fields.phone ?? null,
        displayName: "",
        passwordHash: fields.passwordHash ?? "hash-0",
      });
    },
    async sql<R>(text: string, params: unknown[] = []) {
      return (await current().db.query(text, params)) as R[];
    },
  };
}

/** Runs `fn` in `n` concurrent transactions and returns their results. */
export function concurrently<T>(store: Store, n: number, fn: (tx: Tx, i: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => store.transaction((tx) => fn(tx, i))));
}

export const minutes = (n: number) => n * 60_000;
export const at = (base: Date, ms: number) => new Date(base.getTime() + ms);
