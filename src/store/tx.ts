// Transactions and statements: the only file of src/store/ (and of the whole service outside
// src/db/) that knows a transaction handle is a TypeORM EntityManager. Every store function
// takes a `Tx`; the domain obtains one from `transaction(fn)`, or uses `direct` for a statement
// that stands on its own.
import type { DataSource, EntityManager } from "typeorm";
import { classifyError } from "./errors.js";

/** The connection pool the store runs on (a TypeORM DataSource, opened by src/db/data-source.ts). */
export type Database = DataSource;

declare const txBrand: unique symbol;
/** A transaction handle: opaque outside src/store/. */
export interface Tx {
  readonly [txBrand]: "Tx";
}

export interface Transactions {
  /** Runs `fn` in one transaction: its statements commit together, or none does when it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Statements outside a transaction: each commits on its own. */
  readonly direct: Tx;
}

export function transactions(db: Database): Transactions {
  return {
    async transaction(fn) {
      try {
        return await db.transaction((manager) => fn(asTx(manager)));
      } catch (err) {
        throw classifyError(err);
      }
    },
    direct: asTx(db.manager),
  };
}

function asTx(manager: EntityManager): Tx {
  return manager as unknown as Tx;
}

/** The EntityManager behind `tx`, for the store modules' entity operations. */
export function managerOf(tx: Tx): EntityManager {
  return tx as unknown as EntityManager;
}

/** Runs a store operation, rethrowing what the driver raised classified (errors.ts). */
export async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw classifyError(err);
  }
}

/** What one statement returned: its rows (RETURNING or SELECT) and how many rows it touched. */
export interface Result<R> {
  readonly rows: R[];
  /** Rows updated or deleted (UPDATE/DELETE), else the number of rows returned. */
  readonly count: number;
}

/**
 * Runs one SQL statement. The one place that normalises what TypeORM answers: UPDATE and DELETE
 * come back as [rows, count] on PostgreSQL, every other statement as its rows.
 */
export async function run<R>(tx: Tx, sql: string, params: readonly unknown[] = []): Promise<Result<R>> {
  const result = (await guarded(() => managerOf(tx).query(sql, [...params]))) as unknown;
  if (!Array.isArray(result)) return { rows: [], count: 0 };
  if (result.length === 2 && Array.isArray(result[0]) && typeof result[1] === "number") {
    return { rows: result[0] as R[], count: result[1] };
  }
  return { rows: result as R[], count: result.length };
}

/** The rows of one statement. */
export async function rows<R>(tx: Tx, sql: string, params: readonly unknown[] = []): Promise<R[]> {
  return (await run<R>(tx, sql, params)).rows;
}

/** How many rows one UPDATE or DELETE touched. */
export async function affected(tx: Tx, sql: string, params: readonly unknown[] = []): Promise<number> {
  return (await run(tx, sql, params)).count;
}
