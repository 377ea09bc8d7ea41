// Database errors, classified in one place (as kratos's sqlcon.HandleError does): every store
// statement and transaction rethrows what the driver raised as one of these, with the driver's
// error as `cause`. Anything else (a domain error thrown inside a transaction) passes unchanged.

/** Base of every classified database error. */
export class StoreError extends Error {
  override name = "StoreError";
}

/** A unique index refused the row (SQLSTATE 23505), e.g. an email address already in use. */
export class UniqueViolationError extends StoreError {
  override name = "UniqueViolationError";
  constructor(readonly constraint: string | undefined, options: { cause: unknown }) {
    super(`unique violation${constraint ? ` on ${constraint}` : ""}`, options);
  }
}

/** The transaction lost a serialization or deadlock race (40001, 40P01): retryable as a whole. */
export class SerializationFailureError extends StoreError {
  override name = "SerializationFailureError";
}

/** PostgreSQL unreachable, shutting down, or the connection died mid-transaction: retryable. */
export class DatabaseUnavailableError extends StoreError {
  override name = "DatabaseUnavailableError";
}

// The bounds of issue 19 count as unavailable too: statement_timeout (57014), lock_timeout (55P03),
// idle_in_transaction_session_timeout (25P03), pg's read timeout and the pool's wait.
const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTCONN", "57P01", "57P02", "57P03", "57014", "55P03", "25P03"]);
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|not queryable|Query runner already released|connection provided by a query runner was already released/i;

interface DriverErrorShape {
  readonly name?: string;
  readonly code?: string;
  readonly constraint?: string;
  readonly message?: string;
  readonly driverError?: { readonly code?: string; readonly constraint?: string };
}

function sqlState(err: DriverErrorShape): string {
  return err.driverError?.code ?? err.code ?? "";
}

function isUnavailableShape(err: DriverErrorShape): boolean {
  const code = sqlState(err);
  // SQLSTATE class 08: connection exceptions.
  return UNAVAILABLE_CODES.has(code) || code.startsWith("08") || err.name === "QueryRunnerAlreadyReleasedError" || err.name === "QueryRunnerProviderAlreadyReleasedError" || UNAVAILABLE_MESSAGES.test(err.message ?? "");
}

/** The classified form of `err` (a StoreError), or `err` itself when it is no database error. */
export function classifyError(err: unknown): unknown {
  if (err instanceof StoreError || typeof err !== "object" || err === null) return err;
  const shape = err as DriverErrorShape;
  const code = sqlState(shape);
  if (code === "23505") return new UniqueViolationError(shape.driverError?.constraint ?? shape.constraint, { cause: err });
  if (code === "40001" || code === "40P01") return new SerializationFailureError(`serialization failure (${code})`, { cause: err });
  if (isUnavailableShape(shape)) return new DatabaseUnavailableError(`database unavailable: ${shape.message ?? code}`, { cause: err });
  return err;
}

/** Whether `err` means the database could not be reached (classified here or raw from the driver). */
export function isDatabaseUnavailable(err: unknown): boolean {
  return classifyError(err) instanceof DatabaseUnavailableError;
}
