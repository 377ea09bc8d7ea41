// The stored-data fingerprint behind "a refused request changes nothing": a row count and a
// digest of every row of every table. The table list comes from the database itself, so a table
// added by a migration is covered without anyone remembering to add it here.
import type { DataSource } from "typeorm";
import { expect } from "vitest";

/** TypeORM's own bookkeeping, not data a request writes. */
const NOT_DATA = ["migrations"];

/**
 * Columns written off the request path by a timer, whatever a request did: a key's last use is
 * recorded in batches, at most once a minute (src/domain/callers/directory.ts).
 */
const BACKGROUND_COLUMNS: Readonly<Record<string, readonly string[]>> = { service_account_keys: ["last_used_at"] };

const tablesOf = new WeakMap<DataSource, Promise<string[]>>();

/** Every table of the public schema but the migrations table, by name. */
export function dataTables(db: DataSource): Promise<string[]> {
  let tables = tablesOf.get(db);
  if (!tables) {
    tables = (
      db.query(
        `SELECT table_name AS name FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND NOT (table_name = ANY($1))
          ORDER BY table_name`,
        [NOT_DATA],
      ) as Promise<Array<{ name: string }>>
    ).then((rows) => rows.map((r) => r.name));
    tablesOf.set(db, tables);
  }
  return tables;
}

/** `{ table: "<n> rows <digest>" }` for every data table but `except`. */
export async function tableDigests(db: DataSource, except: readonly string[] = []): Promise<Record<string, string>> {
  const tables = (await dataTables(db)).filter((table) => !except.includes(table));
  // One round trip for all tables: the property tests take a digest around every call.
  const columns = tables.map((table) => {
    const skipped = BACKGROUND_COLUMNS[table];
    const row = skipped ? `(to_jsonb(t) - ARRAY[${skipped.map((c) => `'${c}'`).join(", ")}])::text` : "t::text";
    return `(SELECT count(*)::text || ' rows ' || coalesce(md5(string_agg(${row}, '|' ORDER BY ${row})), '') FROM "${table}" t) AS "${table}"`;
  });
  const [row] = (await db.query(`SELECT ${columns.join(", ")}`)) as Array<Record<string, string>>;
  return Object.fromEntries(tables.map((table) => [table, row![table]!]));
}

/**
 * Runs `action` and asserts that no stored row changed. `except` names tables a refusal may
 * still write by design (a refused login counts the failure; a sign-up refused as
 * IDENTIFIER_TAKEN spends its sign-up quota).
 */
export async function expectUnchanged<T>(db: DataSource, action: () => Promise<T>, except: readonly string[] = []): Promise<T> {
  const before = await tableDigests(db, except);
  const result = await action();
  expect(await tableDigests(db, except), "stored data changed").toEqual(before);
  return result;
}

/** As expectUnchanged, and no one-time-code message was sent either (`sent` counts them). */
export async function expectNothingStored<T>(
  db: DataSource,
  sent: () => number,
  action: () => Promise<T>,
  options: { except?: readonly string[] } = {},
): Promise<T> {
  const messages = sent();
  const result = await expectUnchanged(db, action, options.except);
  expect(sent(), "messages sent").toBe(messages);
  return result;
}

/** The rate-limit hits recorded under keys starting with `prefix`. */
export async function limitHits(db: DataSource, prefix: string): Promise<number> {
  const [row] = (await db.query(`SELECT coalesce(sum(cardinality(hits)), 0)::int AS n FROM rate_limits WHERE key LIKE $1`, [`${prefix}%`])) as Array<{
    n: number;
  }>;
  return row!.n;
}
