/**
 * Classifies driver failures (pg and PGlite) so the stores can wrap them in
 * the SPI's typed errors with the right `retriable` flag.
 */

/** SQLSTATE of a unique violation: a sequence number is taken. */
export const UNIQUE_VIOLATION = '23505';

/** SQLSTATE of a call to a function that does not exist (e.g. `append_events` in an older schema). */
export const UNDEFINED_FUNCTION = '42883';

/** SQLSTATEs after which the same operation may succeed when tried again. */
const RETRIABLE_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '57014', // query_canceled (statement timeout)
]);

/** Node socket errors of a lost or refused connection. */
const RETRIABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** The SQLSTATE or socket error code of a driver error, if it has one. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Whether retrying may help: connection failures (class 08, socket errors, a
 * connection pg reports as terminated), serialization failures, deadlocks,
 * shutdowns and insufficient resources (class 53).
 */
export function isRetriableDbError(error: unknown): boolean {
  const code = errorCode(error);
  if (code !== undefined) {
    return code.startsWith('08') || code.startsWith('53') || RETRIABLE_SQLSTATES.has(code) || RETRIABLE_SOCKET_CODES.has(code);
  }
  // pg reports a dropped connection as a plain Error without a code.
  return error instanceof Error && /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(error.message);
}

/** The message of a driver error, for the wrapping error's message. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Errors that happened before a statement was sent (no connection, session setup failed). */
const notSent = new WeakSet<object>();

/** Marks `error` as raised before the statement was sent (the executor's connect step); returns it. */
export function markNotSent(error: unknown): unknown {
  if (typeof error === 'object' && error !== null) notSent.add(error);
  return error;
}

/** Whether `error` was raised before the statement reached the server. */
export function isNotSent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && notSent.has(error);
}

/** Socket errors that can cut a connection after a statement was sent. */
const CONNECTION_LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * Whether a write that failed with `error` may nevertheless have been
 * committed: the statement was sent, then the connection was lost (class 08
 * other than "could not connect", a socket error, pg's "Connection
 * terminated") or the server ended the session (57P01/57P02, e.g.
 * `pg_terminate_backend`) before its answer arrived. A statement the server
 * answered with an error (a timeout, a deadlock, a constraint) was rolled back.
 */
export function isOutcomeUnknownDbError(error: unknown): boolean {
  if (isNotSent(error)) return false;
  const code = errorCode(error);
  if (code !== undefined) {
    if (code === '08001' || code === '08004') return false; // never connected
    return code.startsWith('08') || code === '57P01' || code === '57P02' || CONNECTION_LOST_CODES.has(code);
  }
  return error instanceof Error && /Connection terminated|Query read timeout/i.test(error.message);
}
