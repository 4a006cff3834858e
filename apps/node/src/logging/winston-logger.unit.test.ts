/**
 * The node's JSON log lines: secrets masked, hostile fields survived, and
 * shipping to a real TCP listener (Logstash's json_lines input) that is down
 * at the start, comes up, and dies mid-run without blocking or crashing the
 * logger.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
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

describe('createWinstonLogger', () => {
  it('writes JSON lines with secret fields and configured secrets masked, surviving cycles, __proto__ and huge values', async () => {
    const out = new Lines();
    const logger = createWinstonLogger({ stream: out, secrets: ['hunter22'] });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = cyclic;
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "nested": {"apiKey": "k-1", "ok": 1}}') as Record<string, unknown>;
    logger.info('connecting with password hunter22', { pipeline_id: 'p1', password: 'pw', Authorization: 'Bearer x', cyclic, hostile, big: 'x'.repeat(100_000) });
    await logger.close();
    expect(out.lines).toHaveLength(1);
    const line = JSON.parse(out.lines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ log_level: 'info', message: 'connecting with password ***', pipeline_id: 'p1', password: '***', Authorization: '***' });
    expect(line['cyclic']).toEqual({ name: 'loop', self: '[Circular]' });
    expect(line['hostile']).toEqual(JSON.parse('{"__proto__": {"polluted": true}, "nested": {"apiKey": "***", "ok": 1}}'));
    expect((line['big'] as string).length).toBeLessThan(9_000);
    expect(out.lines[0]).not.toContain('hunter22');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
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
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    for (let i = 0; i < 2_000; i++) logger.warn(`during outage ${i}`);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(timer);
    expect(ticks).toBeGreaterThan((Date.now() - started) / 10 / 4);
    expect(out.lines.filter((l) => l.includes('during outage')).length).toBe(2_000);
    expect(out.lines.filter((l) => l.includes('is unreachable')).length).toBe(2);
    await logger.close();
  });
});
