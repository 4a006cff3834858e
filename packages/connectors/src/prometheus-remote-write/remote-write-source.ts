/**
 * The Prometheus remote-write 1.0 receiver source. It runs an HTTP server that
 * Prometheus `remote_write`s to; each request's samples become records with an
 * increasing numeric offset, and the request is answered 204 only after the
 * pipeline acked (checkpointed) an offset covering its last record. Malformed
 * bodies get 400 with the reason, oversized ones 413, and a full buffer (the
 * pipeline is behind) 503 with Retry-After so Prometheus re-sends: the buffer is
 * bounded. On close, pending requests get 503 and Prometheus re-sends them
 * (at least once; a sink keyed on series + timestamp makes it exactly-once in effect).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as z from 'zod';
import type { Source, SourceBatch, SourceContext, SourceOffset, SourceRecord } from '@dataflow/core';
import { parseDefinition } from '../factory/parse-definition.js';
import { decodeRemoteWrite, MalformedRemoteWriteError } from './remote-write-decoder.js';

/**
 * Options of the remote-write source.
 *
 * @example
 * ```ts
 * parseRemoteWriteSourceDefinition({ type: 'prometheus-remote-write', port: 9201 });
 * ```
 */
export const remoteWriteSourceDefinitionSchema = z.strictObject({
  type: z.literal('prometheus-remote-write'),
  host: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (see `address()`). */
  port: z.number().int().min(0).max(65_535),
  path: z.string().regex(/^\/\S*$/, 'expected an absolute path such as /api/v1/write').default('/api/v1/write'),
  /** Largest accepted compressed body in bytes (413 beyond). */
  maxBodyBytes: z.number().int().positive().max(256 * 1024 * 1024).default(10 * 1024 * 1024),
  /** Largest number of samples buffered or awaiting their checkpoint; beyond it requests get 503. */
  maxBufferedSamples: z.number().int().positive().default(100_000),
  /** The Retry-After seconds sent with 503. */
  retryAfterSeconds: z.number().int().positive().max(3600).default(1),
  /**
   * Prometheus' stale markers (a series ended; value "StaleNaN"): `drop`
   * (default; they are not data, and Prometheus never returns them from
   * queries) or `keep` (sinks see "StaleNaN"; the Cassandra sink writes it as NaN).
   */
  staleMarkers: z.enum(['drop', 'keep']).default('drop'),
});

export type RemoteWriteSourceDefinition = z.output<typeof remoteWriteSourceDefinitionSchema>;

/** Validates a definition; throws `InvalidConnectorOptionsError` naming each bad field. */
export function parseRemoteWriteSourceDefinition(definition: unknown): RemoteWriteSourceDefinition {
  return parseDefinition('prometheus-remote-write', remoteWriteSourceDefinitionSchema, definition);
}

interface PendingRequest {
  readonly lastOffset: number;
  readonly response: ServerResponse;
}

/**
 * @example
 * ```ts
 * const source = new RemoteWriteSource(parseRemoteWriteSourceDefinition({ type: 'prometheus-remote-write', port: 0 }));
 * await source.open({ pipelineId: 'p', checkpoint: undefined, signal });
 * const { port } = source.address(); // Prometheus' remote_write url: http://<host>:<port>/api/v1/write
 * ```
 */
export class RemoteWriteSource implements Source {
  readonly type = 'prometheus-remote-write';
  private server: Server | undefined;
  private readonly buffer: { offset: number; record: SourceRecord }[] = [];
  private readonly pending: PendingRequest[] = [];
  private nextOffset = 0;
  private ackedOffset = 0;
  private polledOffset = 0;
  private staleMarkersDropped = 0;

  /** Stale markers dropped so far (`staleMarkers: 'drop'`); the Source SPI has no metrics hook, so it is read here. */
  get droppedStaleMarkers(): number {
    return this.staleMarkersDropped;
  }

  /** Samples received and not yet acked (buffered or in a batch awaiting its checkpoint). */
  private get unacked(): number {
    return this.nextOffset - this.ackedOffset;
  }
  private waiter: (() => void) | undefined;

  constructor(private readonly options: RemoteWriteSourceDefinition) {}

  async open(context: SourceContext): Promise<void> {
    // Offsets are per process: the checkpoint only orders acks, a restart starts again at the stored value.
    if (typeof context.checkpoint === 'number') this.nextOffset = context.checkpoint;
    this.ackedOffset = this.nextOffset;
    this.polledOffset = this.nextOffset;
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
  }

  /** The address the server listens on. */
  address(): AddressInfo {
    return this.server!.address() as AddressInfo;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = (req.url ?? '').split('?')[0];
    if (url !== this.options.path) return void res.writeHead(404).end('not found');
    if (req.method !== 'POST') return void res.writeHead(405, { Allow: 'POST' }).end('only POST');
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.startsWith('application/x-protobuf')) {
      return void res.writeHead(400).end(`content-type must be application/x-protobuf, got ${contentType.slice(0, 100)}`);
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'snappy') {
      return void res.writeHead(400).end(`content-encoding must be snappy`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > this.options.maxBodyBytes) {
        tooLarge = true;
        chunks.length = 0;
        res.writeHead(413, { Connection: 'close' }).end(`body exceeds ${this.options.maxBodyBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!tooLarge) this.accept(Buffer.concat(chunks), res);
    });
  }

  private accept(body: Buffer, res: ServerResponse): void {
    let samples;
    try {
      samples = decodeRemoteWrite(body);
    } catch (error) {
      const reason = error instanceof MalformedRemoteWriteError ? error.message : 'undecodable body';
      return void res.writeHead(400).end(reason);
    }
    if (this.options.staleMarkers === 'drop') {
      const kept = samples.filter((sample) => sample.value !== 'StaleNaN');
      this.staleMarkersDropped += samples.length - kept.length;
      samples = kept;
    }
    if (samples.length === 0) return void res.writeHead(204).end();
    if (this.unacked + samples.length > this.options.maxBufferedSamples) {
      return void res.writeHead(503, { 'Retry-After': String(this.options.retryAfterSeconds) }).end('pipeline is behind; retry');
    }
    for (const sample of samples) {
      this.nextOffset += 1;
      this.buffer.push({ offset: this.nextOffset, record: { ok: true, value: sample } });
    }
    this.pending.push({ lastOffset: this.nextOffset, response: res });
    this.waiter?.();
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch> {
    if (this.buffer.length === 0 && maxWaitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.waiter = undefined; resolve(); }, maxWaitMs);
        this.waiter = () => { clearTimeout(timer); this.waiter = undefined; resolve(); };
      });
    }
    const taken = this.buffer.splice(0, maxRecords);
    if (taken.length > 0) this.polledOffset = taken[taken.length - 1]!.offset;
    const offset = this.polledOffset;
    return { records: taken.map((t) => t.record), offset, done: false };
  }

  ack(offset: SourceOffset): Promise<void> {
    if (typeof offset !== 'number') return Promise.resolve();
    while (this.pending.length > 0 && this.pending[0]!.lastOffset <= offset) {
      this.pending.shift()!.response.writeHead(204).end();
    }
    if (offset > this.ackedOffset) this.ackedOffset = Math.min(offset, this.nextOffset);
    return Promise.resolve();
  }

  async close(): Promise<void> {
    for (const request of this.pending.splice(0)) {
      request.response.writeHead(503, { 'Retry-After': String(this.options.retryAfterSeconds) }).end('receiver closing; retry');
    }
    this.buffer.length = 0;
    this.ackedOffset = this.nextOffset;
    this.waiter?.();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  }
}
