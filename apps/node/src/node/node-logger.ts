/**
 * The logger a node writes its own lines to: injected, so the node runs with
 * winston in `main.ts`, with a recording logger in tests, and never prints by
 * itself.
 */

/** Structured fields of a log line (snake_case keys, as the JSON logs of docs/domain.md). */
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * Where a node logs.
 *
 * @example
 * ```ts
 * const logger: NodeLogger = { debug: () => {}, info: (m, f) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
 * ```
 */
export interface NodeLogger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}
