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
import { redact } from './redact.js';

/** Log levels, most severe first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type { LogstashOptions } from './logstash-transport.js';

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

/** Renames winston's `level` to `log_level`, puts it first after the timestamp, masks secrets. */
const domainShape = winston.format((info, opts: unknown) => {
  const secrets = Array.isArray(opts) ? (opts as string[]) : [];
  const { level, message, ...fields } = info;
  // Stamped here, not by winston's format: that one keeps a `timestamp` the fields already carry.
  const record: Record<string, unknown> = { timestamp: new Date().toISOString(), log_level: level, message: redact(typeof message === 'string' ? message : String(message)) };
  // The line's own keys win over a field of the same name.
  for (const [key, value] of Object.entries(redact(fields) as object)) if (!Object.hasOwn(record, key)) Object.defineProperty(record, key, { value, enumerable: true });
  let line = JSON.stringify(record);
  for (const secret of secrets) line = line.replaceAll(JSON.stringify(secret).slice(1, -1), '***');
  return Object.assign(info, { [Symbol.for('message')]: line });
});

/** What the Logstash transport reports: for `/ready` and metrics. */
export interface LogstashStatus {
  readonly connected: boolean;
  /** Lines waiting for the connection. */
  readonly queued: number;
  /** Lines dropped since the start because the queue was full. */
  readonly dropped: number;
}

/** The node's logger, closable; `logstash()` is undefined when no Logstash is configured. */
export interface WinstonLogger extends NodeLogger {
  logstash(): LogstashStatus | undefined;
  close(): Promise<void>;
}

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
export function createWinstonLogger(options: WinstonLoggerOptions = {}): WinstonLogger {
  const stream = options.stream ?? process.stderr;
  const transports: winston.transport[] = [new winston.transports.Stream({ stream })];
  let shipper: LogstashTransport | undefined;
  const secrets = [...(options.secrets ?? [])].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  const logger = winston.createLogger({
    level: options.level ?? 'info',
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: domainShape(secrets),
    transports,
  });
  if (options.logstash !== undefined) {
    // Notices about Logstash go to the other transports only (through a child logger they would also queue for Logstash).
    const local = winston.createLogger({ levels: { error: 0, warn: 1, info: 2, debug: 3 }, format: domainShape(secrets), transports: [new winston.transports.Stream({ stream })] });
    shipper = new LogstashTransport(options.logstash, (message) => local.warn(message));
    logger.add(shipper);
  }
  let closing: Promise<void> | undefined;
  const write = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (closing === undefined) {
      logger.log(level, message, fields ?? {});
      return;
    }
    // After close (a late answer during the stop): winston's stream has ended and would throw; the line goes to the stream as it is.
    const rank = { error: 0, warn: 1, info: 2, debug: 3 } as const;
    if (rank[level] > rank[options.level ?? 'info'] || !stream.writable) return;
    const masked = secrets.reduce((text, secret) => text.replaceAll(secret, '***'), message);
    stream.write(`${JSON.stringify({ timestamp: new Date().toISOString(), log_level: level, message: masked })}\n`);
  };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    logstash: () => (shipper === undefined ? undefined : { connected: shipper.isConnected, queued: shipper.queued, dropped: shipper.dropped }),
    /** Resolves once every line is handed to the stream (and to Logstash, waiting at most `closeTimeoutMs` for it). */
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        logger.on('finish', () => {
          // Its reconnect timer and socket must not keep the process alive.
          void (shipper?.shutdown() ?? Promise.resolve()).then(resolve);
        });
        logger.end();
      })),
  };
}
