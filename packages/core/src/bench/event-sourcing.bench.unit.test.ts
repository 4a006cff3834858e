import { describe, expect, it } from 'vitest';
import { runEventSourcingBench } from './event-sourcing.bench.js';

describe('runEventSourcingBench', () => {
  it('runs every mode on a small workload and counts events and appends', async () => {
    const rows = await runEventSourcingBench({ events: 200, batchSize: 10 });
    expect(rows.map((r) => [r.mode, r.events, r.appends])).toEqual([
      ['1 event / append, awaited', 200, 200],
      ['1 event / append, pipelined', 200, 200],
      ['1 event / command, pipelined, group commit of 10', 200, 21],
      ['10 events / append, awaited', 200, 20],
      ['recovery (replay into state)', 200, 0],
    ]);
  });
});
