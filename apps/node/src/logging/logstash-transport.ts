/**
 * Ships the node's JSON log lines to Logstash over TCP (a `tcp` input with
 * the `json_lines` codec), with winston-logstash's connection manager
 * (reconnects with exponential backoff, 100 ms doubling to 30 s, without
 * bound). A Logstash outage never blocks or crashes the node: a line is
 * handed over and the logger goes on at once (the other transports never
 * wait for this one), at most `maxQueuedLines` wait for the connection (the
 * oldest not yet sent are dropped and counted), each outage is reported
 * once, with one more line when the connection is back, and closing waits a
 * bounded time for the queued lines. See docs-logging.md.
 */
import { createRequire } from 'node:module';
import Transport from 'winston-transport';
import { NodeConfigError } from '../node/node-errors.js';

/** Where Logstash listens. */
export interface LogstashOptions {
  readonly host: string;
  readonly port: number;
  /** Lines kept while Logstash is away (default 10 000); older ones are dropped. */
  readonly maxQueuedLines?: number;
  /** How long closing the logger waits for queued lines to reach Logstash (default 2 000). */
  readonly closeTimeoutMs?: number;
}

/** What the transport reports about its own state (to standard error, by the logger). */
export type LogstashNotice = (message: string) => void;

interface Manager {
  logQueue: unknown[];
  isFlushing: boolean;
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
  private closing: Promise<void> | undefined;

  constructor(
    readonly target: LogstashOptions,
    notice: LogstashNotice,
  ) {
    super();
    if (typeof target.host !== 'string' || target.host.trim() === '') throw new NodeConfigError('logging.logstash.host', 'must be a host name or address');
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65_535) throw new NodeConfigError('logging.logstash.port', `must be a TCP port 1-65535 (got ${String(target.port)})`);
    if (target.maxQueuedLines !== undefined && (!Number.isInteger(target.maxQueuedLines) || target.maxQueuedLines < 1)) {
      throw new NodeConfigError('logging.logstash.maxQueuedLines', `must be a positive integer (got ${String(target.maxQueuedLines)})`);
    }
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
        // The head may be on the wire (the manager removes it when the write completes): drop the oldest line not yet sent.
        this.manager.logQueue.splice(this.manager.isFlushing ? 1 : 0, 1);
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

  /** Whether the connection to Logstash is up. */
  get isConnected(): boolean {
    return this.connected;
  }

  /**
   * Resolves when every queued line is written, at once during an outage, or
   * after `timeoutMs` (Logstash slow or still connecting): a shutdown waits a
   * bounded time for its last lines.
   */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.outage && this.manager.logQueue.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Waits for queued lines (at most `closeTimeoutMs`), then closes the
   * connection and stops reconnecting; the same promise on every call.
   */
  shutdown(): Promise<void> {
    this.closing ??= this.drain(this.target.closeTimeoutMs ?? 2_000).then(() => this.manager.close());
    return this.closing;
  }

  /** Called by winston when the logger ends (it unpipes its transports): the same as `shutdown()`. */
  override close(): void {
    void this.shutdown();
  }
}
