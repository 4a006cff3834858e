/**
 * Turns Node file-system failures into `ConnectorError`s: transient conditions
 * (a full disk, too many open files, an interrupted call) are retriable,
 * anything else (missing file, no permission, ...) is permanent.
 */
import { ConnectorError } from '@dataflow/core';

const TRANSIENT_CODES = new Set(['EAGAIN', 'EBUSY', 'EINTR', 'EMFILE', 'ENFILE', 'ENOSPC', 'EIO', 'ETIMEDOUT']);

/**
 * Wraps a failed file operation.
 *
 * @example
 * ```ts
 * throw fileError('file', `cannot open ${path}`, error);
 * ```
 */
export function fileError(connector: string, message: string, cause: unknown): ConnectorError {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ConnectorError(connector, `${message}: ${detail}`, { retriable: code !== undefined && TRANSIENT_CODES.has(code), cause });
}
