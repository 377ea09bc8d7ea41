// Raw-SQL helpers shared by the domain modules.

/** TypeORM answers UPDATE/DELETE ... RETURNING with [rows, count] on PostgreSQL, other statements with rows. */
export function returnedRows<T>(result: unknown): T[] {
  const list = result as unknown[];
  return (Array.isArray(list[0]) ? list[0] : list) as T[];
}
