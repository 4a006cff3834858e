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
import { LogstashTransport, type LogstashOptions } from './logstash-transport.js';

/** Log levels, most severe first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface WinstonLoggerOptions {
  /** Lines below this level are dropped (default `info`). */
  readonly level?: LogLevel;
  /** Default: standard error. */
  readonly stream?: Writable;
  /** Also ship every line to Logstash (TCP, JSON lines); an outage never blocks the node. */
  readonly logstash?: LogstashOptions;
  /** Values replaced by `***` wherever they appear in a line (the configuration's secrets). */
  readonly secrets?: readonly string[];
}

/** Field names whose values never reach a log line. */
const SECRET_FIELD = /pass(word)?|secret|token|authorization|api[-_]?key|credential/i;
const MAX_DEPTH = 8;
const MAX_STRING = 8_192;

/** A copy of `value` safe to log: secret fields masked, cycles, depth and long strings cut. */
function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}... (${value.length} chars)` : value;
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Error) return { name: value.name, message: redact(value.message, depth + 1, seen) };
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    // defineProperty: a "__proto__" field stays an ordinary field of the copy.
    Object.defineProperty(out, key, { value: SECRET_FIELD.test(key) ? '***' : redact(v, depth + 1, seen), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Renames winston's `level` to `log_level`, puts it first after the timestamp, masks secrets. */
const domainShape = winston.format((info, opts: unknown) => {
  const secrets = Array.isArray(opts) ? (opts as string[]) : [];
  const { level, message, timestamp, ...fields } = info;
  let line = JSON.stringify({ timestamp, log_level: level, message, ...(redact(fields) as object) });
  for (const secret of secrets) line = line.replaceAll(JSON.stringify(secret).slice(1, -1), '***');
  return Object.assign(info, { [Symbol.for('message')]: line });
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
  const transports: winston.transport[] = [new winston.transports.Stream({ stream })];
  let shipper: LogstashTransport | undefined;
  const secrets = [...(options.secrets ?? [])].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(winston.format.timestamp(), domainShape(secrets)),
    transports,
  });
  if (options.logstash !== undefined) {
    // Notices about Logstash go to the other transports only (through a child logger they would also queue for Logstash).
    const local = winston.createLogger({ levels: { error: 0, warn: 1, info: 2, debug: 3 }, format: winston.format.combine(winston.format.timestamp(), domainShape(secrets)), transports: [new winston.transports.Stream({ stream })] });
    shipper = new LogstashTransport(options.logstash, (message) => local.warn(message));
    logger.add(shipper);
  }
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
        logger.on('finish', () => {
          // Its reconnect timer and socket must not keep the process alive.
          shipper?.close();
          resolve();
        });
        logger.end();
      }),
  };
}
