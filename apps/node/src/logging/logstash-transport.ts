/**
 * Ships the node's JSON log lines to Logstash over TCP (a `tcp` input with
 * the `json_lines` codec), with winston-logstash's connection manager
 * (reconnects with exponential backoff, 100 ms doubling to 30 s, without
 * bound). A Logstash outage never blocks or crashes the node: a line is
 * handed over and the logger goes on at once (the other transports never
 * wait for this one), at most `maxQueuedLines` wait for the connection (the
 * oldest are dropped and counted), and each outage is reported once, with
 * one more line when the connection is back.
 */
import { createRequire } from 'node:module';
import Transport from 'winston-transport';

/** Where Logstash listens. */
export interface LogstashOptions {
  readonly host: string;
  readonly port: number;
  /** Lines kept while Logstash is away (default 10 000); older ones are dropped. */
  readonly maxQueuedLines?: number;
}

/** What the transport reports about its own state (to standard error, by the logger). */
export type LogstashNotice = (message: string) => void;

interface Manager {
  logQueue: unknown[];
  on(event: 'connected' | 'retrying' | 'error', listener: (error?: Error) => void): void;
  start(): void;
  log(entry: string, callback: () => void): void;
  close(): void;
}

const require = createRequire(import.meta.url);
// winston-logstash has no exports map; its connection and manager are the parts used here (its transport waits for each send).
const { Manager: ManagerClass } = require('winston-logstash/lib/manager') as { Manager: new (options: object, connection: object) => Manager };
const { PlainConnection } = require('winston-logstash/lib/connection') as { PlainConnection: new (options: object) => object };

const MESSAGE = Symbol.for('message');

/**
 * A winston transport writing each formatted line (the JSON the other
 * transports write) to Logstash.
 *
 * @example
 * ```ts
 * winston.createLogger({ transports: [new LogstashTransport({ host: 'logstash', port: 5000 }, (m) => process.stderr.write(`${m}\n`))] });
 * ```
 */
export class LogstashTransport extends Transport {
  /** Lines dropped since the start because the queue was full. */
  dropped = 0;
  private readonly manager: Manager;
  private readonly maxQueued: number;
  private connected = false;
  private outage = false;
  private droppedInOutage = 0;

  constructor(
    readonly target: LogstashOptions,
    notice: LogstashNotice,
  ) {
    super();
    this.maxQueued = target.maxQueuedLines ?? 10_000;
    const options = {
      host: target.host,
      port: target.port,
      retryStrategy: { strategy: 'exponentialBackoff', maxConnectRetries: -1, initialDelayMs: 100, maxDelayBeforeRetryMs: 30_000 },
    };
    this.manager = new ManagerClass(options, new PlainConnection(options));
    const where = `${target.host}:${target.port}`;
    this.manager.on('connected', () => {
      this.connected = true;
      if (this.outage) notice(`logstash ${where} is reachable again; ${this.droppedInOutage} log lines were dropped meanwhile`);
      this.outage = false;
      this.droppedInOutage = 0;
    });
    this.manager.on('retrying', () => {
      if (!this.outage) notice(`logstash ${where} is unreachable${this.connected ? ' (the connection was lost)' : ''}; lines wait (at most ${this.maxQueued}) while it reconnects`);
      this.outage = true;
      this.connected = false;
    });
    // With unlimited retries the manager never gives up; an error it still emits must not crash the process.
    this.manager.on('error', (error) => notice(`logstash ${where}: ${error?.message ?? 'failed'}`));
    this.manager.start();
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    const line = info[MESSAGE];
    if (typeof line === 'string') {
      if (this.manager.logQueue.length >= this.maxQueued) {
        this.manager.logQueue.shift();
        this.dropped++;
        this.droppedInOutage++;
      }
      this.manager.log(line, () => undefined);
    }
    callback();
  }

  /** Lines waiting for the connection. */
  get queued(): number {
    return this.manager.logQueue.length;
  }

  override close(): void {
    this.manager.close();
  }
}
