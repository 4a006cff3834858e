/**
 * The node's settings from its environment: `DATAFLOW_DATA_DIR` (default
 * `./data`), `DATAFLOW_POSTGRES_URL` (journal on a Postgres server instead of
 * the embedded PGlite), `DATAFLOW_POSTGRES_SCHEMA`, `DATAFLOW_LOG_LEVEL`,
 * `DATAFLOW_SHUTDOWN_TIMEOUT_MS` (default 30 000) and
 * `DATAFLOW_OVERWRITE_OUTPUT` (`1`/`true`: a demo without a checkpoint may
 * truncate an existing output file), `DATAFLOW_MIGRATE` (`check`, the default:
 * a Postgres schema missing a migration is refused, naming `dataflow migrate`;
 * `auto`: the node applies missing migrations at start). A malformed value is a `NodeConfigError` naming the variable.
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
  /** How long a stop may take before the process exits anyway, with code 1. */
  readonly shutdownTimeoutMs: number;
  /** Whether a demo that starts from the beginning may overwrite an output file it has no checkpoint for. */
  readonly overwriteOutput: boolean;
}

/** Default of `DATAFLOW_SHUTDOWN_TIMEOUT_MS`. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/**
 * Reads the settings from `env`.
 *
 * @example
 * ```ts
 * const settings = nodeSettingsFromEnv({ DATAFLOW_DATA_DIR: '/tmp/df', DATAFLOW_LOG_LEVEL: 'debug' });
 * // { dataDir: '/tmp/df', store: { type: 'pglite', dataDir: '/tmp/df' }, logLevel: 'debug', shutdownTimeoutMs: 30000, overwriteOutput: false }
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
  const migrate = nonEmpty(env['DATAFLOW_MIGRATE'])?.toLowerCase() ?? 'check';
  if (migrate !== 'check' && migrate !== 'auto') {
    throw new NodeConfigError('DATAFLOW_MIGRATE', `is ${JSON.stringify(migrate)}; expected check or auto`);
  }
  const store: NodeStore =
    url === undefined
      ? { type: 'pglite', dataDir }
      : { type: 'postgres', url, migrate, ...(schema === undefined ? {} : { schema }) };
  const timeoutText = nonEmpty(env['DATAFLOW_SHUTDOWN_TIMEOUT_MS']);
  const shutdownTimeoutMs = timeoutText === undefined ? DEFAULT_SHUTDOWN_TIMEOUT_MS : Number(timeoutText);
  if (!Number.isInteger(shutdownTimeoutMs) || shutdownTimeoutMs < 1) {
    throw new NodeConfigError('DATAFLOW_SHUTDOWN_TIMEOUT_MS', `is ${JSON.stringify(timeoutText)}; expected a positive whole number of milliseconds`);
  }
  const overwriteText = nonEmpty(env['DATAFLOW_OVERWRITE_OUTPUT'])?.toLowerCase();
  if (overwriteText !== undefined && !['1', '0', 'true', 'false'].includes(overwriteText)) {
    throw new NodeConfigError('DATAFLOW_OVERWRITE_OUTPUT', `is ${JSON.stringify(overwriteText)}; expected 1, 0, true or false`);
  }
  const overwriteOutput = overwriteText === '1' || overwriteText === 'true';
  return { dataDir, store, logLevel: level as LogLevel, shutdownTimeoutMs, overwriteOutput };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
