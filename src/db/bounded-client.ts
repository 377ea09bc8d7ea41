// The pg client the pool is built with (data-source.ts, `extra.Client`). pg's client-side read
// timeout (query_timeout) rejects a query PostgreSQL does not answer in time, but leaves the
// connection busy with it: the next query on that pooled connection would queue behind the
// unanswered one, and TypeORM's ROLLBACK after the error would wait the whole bound again. This
// client closes its connection the moment a query times out, so the pool drops it (pg-pool
// removes a client that is no longer queryable), the ROLLBACK fails at once, and PostgreSQL rolls
// back whatever transaction the connection held when it sees the connection gone.
import pg from "pg";

/** The message pg rejects a query with when query_timeout passes (pg/lib/client.js). */
export const QUERY_READ_TIMEOUT = "Query read timeout";

type Callback = (err: Error | null, result?: unknown) => void;

export class BoundedClient extends pg.Client {
  // pg's query has a dozen overloads (text, config, Submittable; promise or callback): this one
  // passes every form through and only watches the outcome.
  override query(...args: any[]): any {
    const last: unknown = args.at(-1);
    if (typeof last === "function") {
      args[args.length - 1] = ((err, result) => {
        this.dropOnTimeout(err);
        (last as Callback)(err, result);
      }) satisfies Callback;
      return (super.query as (...a: unknown[]) => unknown)(...args);
    }
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    if (result instanceof Promise) {
      return result.catch((err: unknown) => {
        this.dropOnTimeout(err);
        throw err;
      });
    }
    return result;
  }

  private dropOnTimeout(err: unknown): void {
    if (!(err instanceof Error) || err.message !== QUERY_READ_TIMEOUT) return;
    (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
}
