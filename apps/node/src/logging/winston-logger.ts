/**
 * The node's logs through winston: one JSON object per line with
 * `timestamp`, `log_level`, `message` and snake_case fields such as
 * `pipeline_id` and `total_records` (the shape docs/domain.md ships to Logstash),
 * written to standard error so that standard output stays for the console
 * sink's lines.
 */
import type { Writable } from 'node:stream';
import winston from 'winston';
import type { LogFields, NodeLogger } from '../node/node-logger.js';

/** Log levels, most severe first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface WinstonLoggerOptions {
  /** Lines below this level are dropped (default `info`). */
  readonly level?: LogLevel;
  /** Default: standard error. */
  readonly stream?: Writable;
}

/** Renames winston's `level` to `log_level` and puts it first after the timestamp. */
const domainShape = winston.format((info) => {
  const { level, message, timestamp, ...fields } = info;
  return Object.assign(info, { [Symbol.for('message')]: JSON.stringify({ timestamp, log_level: level, message, ...fields }) });
});

/**
 * A `NodeLogger` writing JSON lines.
 *
 * @example
 * ```ts
 * const logger = createWinstonLogger({ level: 'info' });
 * logger.info('resuming pipeline demo', { pipeline_id: 'demo', total_records: 12_000 });
 * // {"timestamp":"2025-01-01T00:00:00.000Z","log_level":"info","message":"resuming pipeline demo","pipeline_id":"demo","total_records":12000}
 * ```
 */
export function createWinstonLogger(options: WinstonLoggerOptions = {}): NodeLogger & { close(): Promise<void> } {
  const stream = options.stream ?? process.stderr;
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(winston.format.timestamp(), domainShape()),
    transports: [new winston.transports.Stream({ stream })],
  });
  const write = (level: LogLevel) => (message: string, fields?: LogFields) => {
    logger.log(level, message, fields ?? {});
  };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    /** Resolves once every line is handed to the stream. */
    close: () =>
      new Promise<void>((resolve) => {
        logger.on('finish', () => resolve());
        logger.end();
      }),
  };
}
