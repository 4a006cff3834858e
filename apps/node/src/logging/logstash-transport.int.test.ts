/**
 * Shipping log lines to Logstash, against a real TCP listener (Logstash's
 * `tcp` input with the `json_lines` codec): fields arrive; a listener down at
 * the start, up later, killed mid-run or resetting every connection never
 * blocks the event loop, crashes the process or stops the lines on standard
 * error.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogstashTransport } from './logstash-transport.js';
import { createWinstonLogger } from './winston-logger.js';

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    done();
  }
}

interface Listener {
  readonly server: Server;
  readonly received: Record<string, unknown>[];
  readonly sockets: Set<Socket>;
  readonly port: number;
  close(): Promise<void>;
}

async function listen(port = 0): Promise<Listener> {
  const received: Record<string, unknown>[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let rest = '';
    socket.on('data', (chunk) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      for (const part of parts) if (part !== '') received.push(JSON.parse(part) as Record<string, unknown>);
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    received,
    sockets,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const listeners: Listener[] = [];
afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close();
});

// Any error that escapes the transport (an unhandled 'error' event or rejection) fails the test.
let unhandled: unknown[] = [];
const record = (error: unknown): void => {
  unhandled.push(error);
};
beforeEach(() => {
  unhandled = [];
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
});
afterEach(async () => {
  process.off('uncaughtException', record);
  process.off('unhandledRejection', record);
  for (const l of listeners.splice(0)) await l.close();
});

describe('shipping to Logstash', () => {
  it('delivers each line as one JSON object with its fields, secrets masked, and drains on close', async () => {
    const listener = await listen();
    listeners.push(listener);
    const out = new Lines();
    const logger = createWinstonLogger({ stream: out, secrets: ['s3cr3t-value'], logstash: { host: '127.0.0.1', port: listener.port } });
    for (let i = 0; i < 200; i++) logger.info(`batch ${i}`, { pipeline_id: 'orders', total_records: i, source: { url: 'x://s3cr3t-value@h', token: 't' } });
    await logger.close();
    await vi.waitFor(() => expect(listener.received).toHaveLength(200), { timeout: 5_000 });
    expect(listener.received[199]).toMatchObject({ log_level: 'info', message: 'batch 199', pipeline_id: 'orders', total_records: 199, source: { url: 'x://***@h', token: '***' } });
    expect(typeof listener.received[0]?.['timestamp']).toBe('string');
    expect(out.lines).toHaveLength(200);
    expect(unhandled).toEqual([]);
  });

  it('ships lines to Logstash, waits for a listener that comes up later, and keeps logging when it dies', { timeout: 30_000 }, async () => {
    // A port that refuses at first: take one, release it, and bring the listener up there later.
    const probe = await listen();
    const port = probe.port;
    await probe.close();
    const out = new Lines();
    const logger = createWinstonLogger({ stream: out, logstash: { host: '127.0.0.1', port, maxQueuedLines: 50 } });
    for (let i = 0; i < 80; i++) logger.info(`early ${i}`, { pipeline_id: 'p' });
    await vi.waitFor(() => expect(out.lines.some((l) => l.includes('is unreachable'))).toBe(true), { timeout: 5_000 });
    const listener = await listen(port);
    listeners.push(listener);
    await vi.waitFor(() => expect(listener.received.length).toBeGreaterThanOrEqual(50), { timeout: 15_000 });
    // The queue held the newest 50: the oldest 30 were dropped, and the node said so when the connection came back.
    expect(listener.received[0]).toMatchObject({ log_level: 'info', message: 'early 30', pipeline_id: 'p' });
    await vi.waitFor(() => expect(out.lines.some((l) => l.includes('reachable again; 30 log lines were dropped'))).toBe(true), { timeout: 5_000 });

    logger.info('live', { pipeline_id: 'p' });
    await vi.waitFor(() => expect(listener.received.at(-1)).toMatchObject({ message: 'live' }), { timeout: 5_000 });

    await listener.close();
    listeners.splice(0);
    // The event loop keeps turning: the largest gap between 10 ms ticks stays small while lines pour in during the outage.
    let last = performance.now();
    let maxGapMs = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
    }, 10);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 100; i++) logger.warn(`during outage ${round * 100 + i}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    clearInterval(timer);
    expect(maxGapMs).toBeLessThan(250);
    expect(out.lines.filter((l) => l.includes('during outage')).length).toBe(2_000);
    expect(out.lines.filter((l) => l.includes('is unreachable')).length).toBe(2);
    expect(logger.logstash()).toMatchObject({ connected: false, queued: 50 });
    expect(logger.logstash()?.dropped).toBeGreaterThan(1_900);
    await logger.close();
    expect(unhandled).toEqual([]);
  });

  it('survives a listener that resets every connection: one warning per outage, stderr goes on', { timeout: 20_000 }, async () => {
    const server = createServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const out = new Lines();
    const logger = createWinstonLogger({ stream: out, logstash: { host: '127.0.0.1', port, maxQueuedLines: 10 } });
    for (let i = 0; i < 30; i++) {
      logger.info(`line ${i}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await logger.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(out.lines.filter((l) => l.includes('"message":"line')).length).toBe(30);
    expect(out.lines.filter((l) => l.includes('is unreachable')).length).toBeLessThanOrEqual(out.lines.filter((l) => l.includes('reachable again')).length + 1);
    expect(logger.logstash()?.queued).toBeLessThanOrEqual(10);
    expect(unhandled).toEqual([]);
  });

  it('refuses a bad address with an error naming the setting', () => {
    expect(() => new LogstashTransport({ host: '127.0.0.1', port: 70_000 }, () => undefined)).toThrow(/logging\.logstash\.port/);
    expect(() => new LogstashTransport({ host: ' ', port: 5000 }, () => undefined)).toThrow(/logging\.logstash\.host/);
    expect(() => new LogstashTransport({ host: 'h', port: 5000, maxQueuedLines: 0 }, () => undefined)).toThrow(/maxQueuedLines/);
  });
});
