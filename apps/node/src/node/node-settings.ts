/**
 * The node's settings from its environment: `DATAFLOW_DATA_DIR` (default
 * `./data`), `DATAFLOW_POSTGRES_URL` (journal on a Postgres server instead of
 * the embedded PGlite), `DATAFLOW_POSTGRES_SCHEMA` and `DATAFLOW_LOG_LEVEL`.
 * A malformed value is a `NodeConfigError` naming the variable.
 */
import { resolve } from 'node:path';
import { LOG_LEVELS, type LogLevel } from '../logging/winston-logger.js';
import { NodeConfigError } from './node-errors.js';
import type { NodeStore } from './node-persistence.js';

export interface NodeSettings {
  /** Absolute; holds the embedded journal (`journal/`) and the demo's output. */
  readonly dataDir: string;
  readonly store: NodeStore;
  readonly logLevel: LogLevel;
}

/**
 * Reads the settings from `env`.
 *
 * @example
 * ```ts
 * const settings = nodeSettingsFromEnv({ DATAFLOW_DATA_DIR: '/tmp/df', DATAFLOW_LOG_LEVEL: 'debug' });
 * // { dataDir: '/tmp/df', store: { type: 'pglite', dataDir: '/tmp/df' }, logLevel: 'debug' }
 * ```
 */
export function nodeSettingsFromEnv(env: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): NodeSettings {
  const dataDir = resolve(cwd, nonEmpty(env['DATAFLOW_DATA_DIR']) ?? 'data');
  const level = nonEmpty(env['DATAFLOW_LOG_LEVEL']) ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new NodeConfigError('DATAFLOW_LOG_LEVEL', `is ${JSON.stringify(level)}; expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const url = nonEmpty(env['DATAFLOW_POSTGRES_URL']);
  const schema = nonEmpty(env['DATAFLOW_POSTGRES_SCHEMA']);
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new NodeConfigError('DATAFLOW_POSTGRES_SCHEMA', `is ${JSON.stringify(schema)}; expected a lower-case SQL identifier`);
  }
  const store: NodeStore =
    url === undefined ? { type: 'pglite', dataDir } : { type: 'postgres', url, ...(schema === undefined ? {} : { schema }) };
  return { dataDir, store, logLevel: level as LogLevel };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
