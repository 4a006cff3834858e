/**
 * The node's JSON log lines: shape, secrets masked, hostile fields survived.
 * (Shipping to Logstash: logstash-transport.int.test.ts.)
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createWinstonLogger } from './winston-logger.js';

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    done();
  }
}

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

  it('keeps timestamp, log_level and message from being overwritten by fields, and never throws on a BigInt', async () => {
    const out = new Lines();
    const logger = createWinstonLogger({ stream: out, level: 'debug' });
    logger.debug('batch', { log_level: 'fake', timestamp: 'fake', pipeline_id: 'p', total_records: 10n });
    await logger.close();
    const line = JSON.parse(out.lines[0] ?? '{}') as Record<string, unknown>;
    expect(Object.keys(line).slice(0, 3)).toEqual(['timestamp', 'log_level', 'message']);
    expect(line).toMatchObject({ log_level: 'debug', message: 'batch', pipeline_id: 'p', total_records: '10' });
    expect(line['timestamp']).not.toBe('fake');
    expect(logger.logstash()).toBeUndefined();
  });

  it('writes a line that comes after close (a late answer during the stop) without throwing, masked, at its level', async () => {
    const out = new Lines();
    const logger = createWinstonLogger({ stream: out, secrets: ['hunter22'] });
    await logger.close();
    const errors: unknown[] = [];
    const caught = (error: unknown) => errors.push(error);
    process.on('uncaughtException', caught);
    logger.warn('late: the coordinator did not answer (password hunter22)', { pipeline_id: 'p1' });
    logger.debug('below the level');
    await new Promise((r) => setTimeout(r, 50));
    process.off('uncaughtException', caught);
    expect(errors).toEqual([]);
    expect(out.lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      { timestamp: expect.any(String) as string, log_level: 'warn', message: 'late: the coordinator did not answer (password ***)' },
    ]);
  });
});
