// The pg client the pool is built with (data-source.ts, `extra.Client`). pg's client-side read
// timeout (query_timeout) rejects a query PostgreSQL does not answer in time, but leaves the
// connection busy with it: the next query on that pooled connection would queue behind the
// unanswered one, and TypeORM's ROLLBACK after the error would wait the whole bound again. This
// client closes its connection the moment a query times out, so the pool drops it (pg-pool
// removes a client that is no longer queryable), the ROLLBACK fails at once, and PostgreSQL rolls
// back whatever transaction the connection held when it sees the connection gone.
//
// It also notes when PostgreSQL last answered any of the pool's queries (a result or an error of
// its own, with a SQLSTATE): the breaker (src/store/health.ts) opens only when its probe fails and
// nothing else was answered meanwhile, so a server that is slow under load but answering is not
// taken for a stalled one.
import pg from "pg";

/** When PostgreSQL last answered a query of the pool (Date.now()); shared by the pool's clients through its options. */
export interface Answers {
  at: number;
}

/** The message pg rejects a query with when query_timeout passes (pg/lib/client.js). */
export const QUERY_READ_TIMEOUT = "Query read timeout";

type Callback = (err: Error | null, result?: unknown) => void;

export class BoundedClient extends pg.Client {
  private readonly answers: Answers | undefined;

  constructor(config: pg.ClientConfig & { answers?: Answers }) {
    super(config);
    this.answers = config.answers;
  }

  // pg's query has a dozen overloads (text, config, Submittable; promise or callback): this one
  // passes every form through and only watches the outcome.
  override query(...args: any[]): any {
    const last: unknown = args.at(-1);
    if (typeof last === "function") {
      args[args.length - 1] = ((err, result) => {
        this.noteAnswer(err);
        this.dropOnTimeout(err);
        (last as Callback)(err, result);
      }) satisfies Callback;
      return (super.query as (...a: unknown[]) => unknown)(...args);
    }
    const result = (super.query as (...a: unknown[]) => unknown)(...args);
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          this.noteAnswer(undefined);
          return value;
        },
        (err: unknown) => {
          this.noteAnswer(err);
          this.dropOnTimeout(err);
          throw err;
        },
      );
    }
    return result;
  }

  /** A result, or an error PostgreSQL sent (it has a SQLSTATE): the server answered. */
  private noteAnswer(err: unknown): void {
    if (this.answers && (err === undefined || err === null || typeof (err as { code?: unknown }).code === "string")) this.answers.at = Date.now();
  }

  private dropOnTimeout(err: unknown): void {
    if (!(err instanceof Error) || err.message !== QUERY_READ_TIMEOUT) return;
    (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
}
