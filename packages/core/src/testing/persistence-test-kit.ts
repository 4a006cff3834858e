/**
 * `PersistenceTestKit`: wraps any journal and snapshot store so a test can
 * make the next writes or reads fail (retriable) or be rejected (permanent),
 * and see what was written. The failures are the typed errors of the
 * persistence SPI, as a real store would throw them.
 */
import type { AppendOptions, AppendResult, Journal, NewEvent, PersistedEvent, ReplayOptions } from '../persistence/journal.js';
import {
  JournalReadError,
  JournalWriteError,
  JournalWriteOutcomeUnknownError,
  SnapshotError,
  WriterLeaseHeldError,
} from '../persistence/persistence-errors.js';
import type { SnapshotCriteria, SnapshotMetadata, SnapshotStore, StoredSnapshot } from '../persistence/snapshot-store.js';

/** An append the wrapped journal accepted. */
export interface RecordedWrite {
  readonly persistenceId: string;
  readonly events: readonly NewEvent[];
  readonly options: AppendOptions;
  readonly lastSequenceNr: number;
}

type Fault = 'fail' | 'reject';
/** Faults of an append: besides failing before the write, it may lose the answer of a write that was (or was not) applied, or find the writer lease held. */
type WriteFault = Fault | 'outcome-unknown-applied' | 'outcome-unknown-not-applied' | { readonly leaseHeldFor: number | undefined };

class FaultQueue<F = Fault> {
  private faults: F[] = [];
  add(fault: F, count: number): void {
    for (let i = 0; i < count; i++) this.faults.push(fault);
  }
  take(): F | undefined {
    return this.faults.shift();
  }
  clear(): void {
    this.faults = [];
  }
}

/**
 * Fault injection and recording around a journal and a snapshot store.
 *
 * @example
 * ```ts
 * const kit = PersistenceTestKit.wrap(createInMemoryPersistence());
 * kit.failNextWrites(1); // the next append fails with a retriable JournalWriteError
 * const entity = EventSourcedBehaviorTestKit.create(counter, { persistence: () => kit });
 * await expect(entity.runCommand({ type: 'add', n: 1 })).rejects.toThrow(/injected/);
 * kit.writes; // the appends that went through
 * ```
 */
export class PersistenceTestKit {
  readonly journal: Journal;
  readonly snapshots: SnapshotStore;
  private readonly recorded: RecordedWrite[] = [];
  private readonly writeFaults = new FaultQueue<WriteFault>();
  private readonly readFaults = new FaultQueue();
  private readonly snapshotSaveFaults = new FaultQueue();
  private readonly snapshotLoadFaults = new FaultQueue();

  private constructor(inner: { readonly journal: Journal; readonly snapshots: SnapshotStore }) {
    this.journal = {
      append: async (persistenceId: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> => {
        const fault = this.writeFaults.take();
        if (fault === 'fail' || fault === 'reject') {
          throw new JournalWriteError(persistenceId, `injected ${fault === 'fail' ? 'failure' : 'rejection'}`, { retriable: fault === 'fail' });
        }
        if (fault === 'outcome-unknown-not-applied') throw new JournalWriteOutcomeUnknownError(persistenceId, 'injected: the answer was lost (the write was not applied)');
        if (typeof fault === 'object') throw new WriterLeaseHeldError(persistenceId, 'injected-holder', fault.leaseHeldFor);
        const result = await inner.journal.append(persistenceId, events, options);
        this.recorded.push({ persistenceId, events, options, lastSequenceNr: result.lastSequenceNr });
        if (fault === 'outcome-unknown-applied') throw new JournalWriteOutcomeUnknownError(persistenceId, 'injected: the answer was lost (the write was applied)');
        return result;
      },
      replay: (persistenceId: string, fromSequenceNr: number, toSequenceNr?: number, options?: ReplayOptions): AsyncIterable<PersistedEvent> => {
        const fault = this.readFaults.take();
        if (fault !== undefined) return failingIterable(readError(persistenceId, fault));
        return inner.journal.replay(persistenceId, fromSequenceNr, toSequenceNr, options);
      },
      highestSequenceNr: async (persistenceId: string): Promise<number> => {
        const fault = this.readFaults.take();
        if (fault !== undefined) throw readError(persistenceId, fault);
        return inner.journal.highestSequenceNr(persistenceId);
      },
      deleteTo: (persistenceId, toSequenceNr) => inner.journal.deleteTo(persistenceId, toSequenceNr),
      close: () => inner.journal.close(),
    };
    this.snapshots = {
      save: async (metadata: SnapshotMetadata, state: unknown, schemaVersion?: number): Promise<void> => {
        const fault = this.snapshotSaveFaults.take();
        if (fault !== undefined) throw snapshotError(metadata.persistenceId, fault);
        await inner.snapshots.save(metadata, state, schemaVersion);
      },
      loadLatest: async (persistenceId: string, criteria?: SnapshotCriteria): Promise<StoredSnapshot | undefined> => {
        const fault = this.snapshotLoadFaults.take();
        if (fault !== undefined) throw snapshotError(persistenceId, fault);
        return inner.snapshots.loadLatest(persistenceId, criteria);
      },
      delete: (persistenceId, criteria) => inner.snapshots.delete(persistenceId, criteria),
      close: () => inner.snapshots.close(),
    };
  }

  /**
   * Wraps a journal and snapshot store (a `PersistencePlugin` fits).
   *
   * @example
   * ```ts
   * const kit = PersistenceTestKit.wrap(createInMemoryPersistence());
   * ```
   */
  static wrap(inner: { readonly journal: Journal; readonly snapshots: SnapshotStore }): PersistenceTestKit {
    return new PersistenceTestKit(inner);
  }

  /** The next `count` appends fail with a retriable `JournalWriteError`; nothing of them is stored. */
  failNextWrites(count = 1): this {
    this.writeFaults.add('fail', count);
    return this;
  }

  /** The next `count` appends are rejected with a permanent (non-retriable) `JournalWriteError`. */
  rejectNextWrites(count = 1): this {
    this.writeFaults.add('reject', count);
    return this;
  }

  /**
   * The next `count` appends fail with `JournalWriteOutcomeUnknownError`, as
   * a store that timed out or lost its connection after the write was sent:
   * with `applied: true` the events WERE stored (and recorded in `writes`),
   * with `applied: false` they were not.
   */
  writeOutcomeUnknownNextWrites(count = 1, options: { readonly applied: boolean }): this {
    this.writeFaults.add(options.applied ? 'outcome-unknown-applied' : 'outcome-unknown-not-applied', count);
    return this;
  }

  /** The next `count` appends fail with `WriterLeaseHeldError` (retriable; nothing stored), naming `retryAfterMs` when given. */
  leaseHeldNextWrites(count = 1, retryAfterMs?: number): this {
    this.writeFaults.add({ leaseHeldFor: retryAfterMs }, count);
    return this;
  }

  /** The next `count` reads (a replay or a highest-sequence-number lookup) fail with a retriable `JournalReadError`. */
  failNextReads(count = 1): this {
    this.readFaults.add('fail', count);
    return this;
  }

  /** The next `count` reads fail with a permanent `JournalReadError`. */
  rejectNextReads(count = 1): this {
    this.readFaults.add('reject', count);
    return this;
  }

  /** The next `count` snapshot saves fail with a retriable `SnapshotError`. */
  failNextSnapshotSaves(count = 1): this {
    this.snapshotSaveFaults.add('fail', count);
    return this;
  }

  /** The next `count` snapshot loads fail with a retriable `SnapshotError`. */
  failNextSnapshotLoads(count = 1): this {
    this.snapshotLoadFaults.add('fail', count);
    return this;
  }

  /** Appends that went through, in order. */
  get writes(): readonly RecordedWrite[] {
    return this.recorded;
  }

  /** Payloads of the events written for `persistenceId`, in order. */
  writtenEvents(persistenceId: string): readonly unknown[] {
    return this.recorded.filter((w) => w.persistenceId === persistenceId).flatMap((w) => w.events.map((e) => e.payload));
  }

  /** Forgets pending faults and recorded writes. */
  reset(): void {
    this.recorded.length = 0;
    this.writeFaults.clear();
    for (const queue of [this.readFaults, this.snapshotSaveFaults, this.snapshotLoadFaults]) queue.clear();
  }
}

function readError(persistenceId: string, fault: Fault): JournalReadError {
  return new JournalReadError(`Journal read for ${persistenceId} failed: injected ${fault === 'fail' ? 'failure' : 'rejection'}`, {
    retriable: fault === 'fail',
  });
}

function snapshotError(persistenceId: string, fault: Fault): SnapshotError {
  return new SnapshotError(persistenceId, `injected ${fault === 'fail' ? 'failure' : 'rejection'}`, { retriable: fault === 'fail' });
}

function failingIterable(error: Error): AsyncIterable<PersistedEvent> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }),
  };
}
