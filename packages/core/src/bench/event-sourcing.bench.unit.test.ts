import { describe, expect, it } from 'vitest';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import type { Journal } from '../persistence/journal.js';
import { JournalWriteError } from '../persistence/persistence-errors.js';
import type { EntityPersistence } from '../event-sourcing/recovery.js';
import { PersistenceTestKit } from '../testing/persistence-test-kit.js';
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

  it('fails instead of counting a write the journal refused (an error reply rejects the run)', async () => {
    const refusingFirstWrite = () => PersistenceTestKit.wrap(createInMemoryPersistence()).rejectNextWrites(1);
    await expect(runEventSourcingBench({ events: 20, batchSize: 5, persistence: refusingFirstWrite })).rejects.toBeInstanceOf(JournalWriteError);
  });

  it('fails when a command told without a reply address was lost (the total is checked)', async () => {
    let stores = 0;
    // The second store is the pipelined mode's: its second append (a command told without a reply address) is refused.
    const store = (): EntityPersistence => {
      const inner = createInMemoryPersistence();
      if (++stores !== 2) return inner;
      let appends = 0;
      const append: Journal['append'] = (persistenceId, events, options) =>
        ++appends === 2 ? Promise.reject(new JournalWriteError(persistenceId, 'refused by the test', { retriable: false })) : inner.journal.append(persistenceId, events, options);
      return { snapshots: inner.snapshots, journal: new Proxy(inner.journal, { get: (target, key, receiver) => (key === 'append' ? append : Reflect.get(target, key, receiver) as unknown) }) };
    };
    await expect(runEventSourcingBench({ events: 20, batchSize: 5, persistence: store })).rejects.toThrow(/pipelined: .* total of 19, expected 20/);
  });
});
