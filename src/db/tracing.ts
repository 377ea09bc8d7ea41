// A client span per SQL statement a traced RPC runs, at the pg level under TypeORM: the pool of
// this DataSource hands out connections whose query() starts a span as a child of the active RPC
// span (src/tracing.ts). Installed only when tracing is on; nothing else is wrapped.
//
// The span holds the statement's text, never its parameters (they carry password hashes, code
// digests, tokens' hashes), and on failure the SQLSTATE only: PostgreSQL's messages can quote a
// value ("invalid input syntax for type uuid: ...").
import type { DataSource } from "typeorm";
import { activeSpan, type Tracing } from "../tracing.js";

// @opentelemetry/api's SpanKind.CLIENT and SpanStatusCode.ERROR, by value (src/tracing.ts: no
// OpenTelemetry module is loaded with tracing off).
const SPAN_KIND_CLIENT = 2;
const STATUS_ERROR = 2;

/** What this file needs of a pg Client and Pool (TypeORM types `driver.master` as any). */
interface PgClient {
  query(...args: unknown[]): unknown;
  [traced]?: true;
}
interface PgPool {
  connect(callback?: (err: Error | undefined, client: PgClient | undefined, release: unknown) => void): unknown;
}

const traced = Symbol("identity.traced");
/** Statement texts are cut here: a span attribute is not a place for a long migration. */
const MAX_STATEMENT_CHARS = 2_000;

/** Makes every connection `db` hands out from now on trace its statements. */
export function traceQueries(db: DataSource, tracing: Tracing): void {
  const pool = (db.driver as { master?: PgPool }).master;
  if (pool === undefined) throw new Error("traceQueries: the DataSource has no pg pool (is it initialized, and PostgreSQL?)");
  const database = db.driver.database;
  const connect = pool.connect.bind(pool);
  // TypeORM asks with a callback (PostgresDriver.obtainMasterConnection); pg answers a promise without one.
  pool.connect = (callback) => {
    if (callback === undefined) return (connect() as Promise<PgClient>).then((client) => instrument(client, tracing, database));
    return connect((err, client, release) => callback(err, client && instrument(client, tracing, database), release));
  };
}

function instrument(client: PgClient, tracing: Tracing, database: string | undefined): PgClient {
  if (client[traced]) return client;
  client[traced] = true;
  const query = client.query.bind(client);
  client.query = (...args: unknown[]): unknown => {
    const parent = activeSpan();
    const [text] = args;
    // Outside a traced call (start-up, background reloads), and for the callback and
    // submittable forms (TypeORM uses neither for queries), the statement runs as it is.
    if (parent === undefined || typeof text !== "string" || args.some((a) => typeof a === "function")) return query(...args);
    const operation = /^\s*([a-z]+)/i.exec(text)?.[1]?.toUpperCase();
    const span = tracing.tracer.startSpan(
      operation ?? "postgresql",
      {
        kind: SPAN_KIND_CLIENT,
        attributes: {
          "db.system.name": "postgresql",
          "db.namespace": database,
          "db.operation.name": operation,
          "db.query.text": text.length > MAX_STATEMENT_CHARS ? `${text.slice(0, MAX_STATEMENT_CHARS)}…` : text,
        },
      },
      tracing.childContext(parent),
    );
    return (query(...args) as Promise<unknown>).then(
      (result) => {
        span.end();
        return result;
      },
      (err: unknown) => {
        const sqlState = (err as { code?: unknown }).code;
        if (typeof sqlState === "string") span.setAttribute("db.response.status_code", sqlState);
        span.setStatus({ code: STATUS_ERROR, message: typeof sqlState === "string" ? `SQLSTATE ${sqlState}` : "query failed" });
        span.end();
        throw err;
      },
    );
  };
  return client;
}
