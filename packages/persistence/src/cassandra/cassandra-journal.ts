/**
 * The Cassandra journal: events in `messages`, one partition per persistence
 * id and `targetPartitionSize` sequence numbers, plus their copies in
 * `tag_views` for `eventsByTag`.
 *
 * A second writer is refused when it writes, not found out at replay (see
 * docs/adr/0002): with `singleWriter: 'lease'` (default) an append needs this
 * process to hold the id's writer lease (`WriterLeases`), and is a plain
 * single-partition batch sent only while the lease is valid; with
 * `'conditional'` every append is a conditional (Paxos) batch
 * `... IF highest_sequence_nr = expected`. Appends queued for the same id are
 * coalesced into one batch; tag rows of all appends share per-partition
 * batches (`TagViewWriter`).
 *
 * Over 400 lines: the append path of both modes (head, partition moves and
 * their recovery, outcome of timed-out writes) reads best in one place.
 */
import { types } from 'cassandra-driver';
import {
  ConcurrencyConflictError,
  formatManifest,
  isDataflowError,
  JournalReadError,
  JournalWriteError,
  JournalWriteOutcomeUnknownError,
  type AppendOptions,
  type AppendResult,
  type Journal,
  type NewEvent,
  type PersistedEvent,
  type ReplayOptions,
  type SerializerRegistry,
} from '@dataflow/core';
import { SendDeadlinePassedError, type BatchStatement, type CassandraSession } from './cassandra-session.js';
import { asWriteError, isUnknownWriteOutcome } from './cassandra-settings.js';
import { bucketOf, partitionOf, timeOf, TimeUuidSource, toNumber, toNumberMap, toOptionalNumber } from './event-row.js';
import type { MessagesReader } from './messages-reader.js';
import { checkUserTag, sliceTagOf } from './slice-tags.js';
import type { PendingTagRow, TagViewWriter } from './tag-view-writer.js';
import { WriterLeases, type Lease } from './writer-leases.js';

interface SerializedEvent {
  readonly eventType: string;
  readonly manifest: string;
  readonly serializerId: string;
  readonly bytes: Buffer;
  readonly tags: readonly string[];
}

interface PendingAppend {
  readonly events: readonly SerializedEvent[];
  readonly options: AppendOptions;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/** What this journal knows of one persistence id's head; reloaded after any conflict. */
interface HeadState {
  highest: number;
  /**
   * The partition whose static columns hold the head (0 for a new id): the
   * last partition of the id. Appends go into the partition of their last
   * sequence number, or into this one when it is further on (after a claimed
   * partition was fenced off, see `releaseClaim`).
   */
  partition: number;
  tagCounters: Map<string, number>;
  /** Tag rows are known to be stored up to here. */
  tagsDurableTo: number;
}

interface PidEntry {
  head: HeadState | undefined;
  /** A sequence number known to be stored (from writes, head reads and replays): head reads start at its partition. */
  knownStored: number;
  lease: Lease | undefined;
  /** A renewal of `lease` running in the background (lease mode), if any. */
  renewal: Promise<void> | undefined;
  pending: PendingAppend[];
  flushQueued: boolean;
  /** Operations queued or running on the id; an idle entry without a live lease may be forgotten. */
  active: number;
  /** Serializes every operation on the persistence id. */
  tail: Promise<void>;
}

/**
 * `Journal` on Cassandra. Create it with `createCassandraPersistence()`.
 *
 * @example
 * ```ts
 * const persistence = await createCassandraPersistence({ contactPoints: ['127.0.0.1:9042'], localDataCenter: 'dc1', keyspace: 'dataflow' });
 * await persistence.journal.append('pipeline-1', [{ eventType: 'PipelineCreated', payload: { name: 'p' }, tags: ['pipeline-events'] }],
 *   { expectedSequenceNr: 0, writerId: 'node-1' });
 * ```
 */
export class CassandraJournal implements Journal {
  private closed = false;
  private readonly entries = new Map<string, PidEntry>();
  private readonly uuids: TimeUuidSource;
  private readonly leases: WriterLeases;
  private readonly q: Record<
    | 'insert' | 'casSamePartition' | 'casClaim' | 'casNew' | 'headSamePartition' | 'headNew' | 'timestampAt'
    | 'setDeletedTo' | 'deleteRows' | 'addPid' | 'lastRow' | 'newestSnapshot',
    string
  >;

  constructor(
    private readonly session: CassandraSession,
    private readonly serializers: SerializerRegistry,
    private readonly messages: MessagesReader,
    private readonly tagWriter: TagViewWriter,
  ) {
    this.uuids = new TimeUuidSource(session.settings.now);
    this.leases = new WriterLeases(session);
    const ks = session.keyspace;
    this.q = {
      insert:
        `INSERT INTO ${ks}.messages (persistence_id, partition_nr, sequence_nr, timestamp, timebucket, writer_uuid, ser_id, ser_manifest, ` +
        'event_manifest, event, tags, tag_pid_sequence_nrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      casSamePartition:
        `UPDATE ${ks}.messages SET highest_sequence_nr = ?, tag_sequence_nrs = tag_sequence_nrs + ?, tagged_to = ? ` +
        'WHERE persistence_id = ? AND partition_nr = ? IF highest_sequence_nr = ?',
      casClaim: `UPDATE ${ks}.messages SET highest_sequence_nr = ? WHERE persistence_id = ? AND partition_nr = ? IF highest_sequence_nr = ?`,
      casNew:
        `UPDATE ${ks}.messages SET highest_sequence_nr = ?, tag_sequence_nrs = ?, tagged_to = ? ` +
        'WHERE persistence_id = ? AND partition_nr = ? IF highest_sequence_nr = null',
      headSamePartition:
        `UPDATE ${ks}.messages SET highest_sequence_nr = ?, tag_sequence_nrs = tag_sequence_nrs + ?, tagged_to = ? ` +
        'WHERE persistence_id = ? AND partition_nr = ?',
      headNew: `UPDATE ${ks}.messages SET highest_sequence_nr = ?, tag_sequence_nrs = ?, tagged_to = ? WHERE persistence_id = ? AND partition_nr = ?`,
      newestSnapshot: `SELECT sequence_nr FROM ${ks}.snapshots WHERE persistence_id = ? LIMIT 1`,
      lastRow: `SELECT sequence_nr FROM ${ks}.messages WHERE persistence_id = ? AND partition_nr = ? ORDER BY sequence_nr DESC LIMIT 1`,
      timestampAt: `SELECT timestamp FROM ${ks}.messages WHERE persistence_id = ? AND partition_nr = ? AND sequence_nr = ?`,
      setDeletedTo: `UPDATE ${ks}.metadata SET deleted_to = ? WHERE persistence_id = ?`,
      deleteRows: `DELETE FROM ${ks}.messages WHERE persistence_id = ? AND partition_nr = ? AND sequence_nr <= ?`,
      addPid: `INSERT INTO ${ks}.all_persistence_ids (persistence_id) VALUES (?)`,
    };
  }

  append(persistenceId: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      if (this.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
      const { expectedSequenceNr } = options;
      if (!Number.isSafeInteger(expectedSequenceNr) || expectedSequenceNr < 0) {
        throw new JournalWriteError(persistenceId, `expectedSequenceNr must be a non-negative integer, got ${expectedSequenceNr}`, { retriable: false });
      }
      if (events.length > this.session.settings.targetPartitionSize) {
        throw new JournalWriteError(persistenceId, `an append of ${events.length} events is larger than targetPartitionSize`, { retriable: false });
      }
      const sliceTag = sliceTagOf(persistenceId);
      const serialized = events.map((event) => this.serialize(persistenceId, event, sliceTag));
      const entry = this.entry(persistenceId);
      entry.pending.push({ events: serialized, options, resolve, reject });
      if (!entry.flushQueued) {
        entry.flushQueued = true;
        // flushPending settles every append it takes; it never rejects.
        void this.exclusive(persistenceId, () => this.flushPending(persistenceId));
      }
    });
  }

  async *replay(persistenceId: string, fromSequenceNr: number, toSequenceNr = Number.MAX_SAFE_INTEGER, options: ReplayOptions = {}): AsyncIterable<PersistedEvent> {
    this.ensureOpen();
    const max = options.max ?? Number.MAX_SAFE_INTEGER;
    let delivered = 0;
    for await (const page of this.messages.storedPages(persistenceId, fromSequenceNr, toSequenceNr)) {
      this.ensureOpen();
      const last = page[page.length - 1];
      // A recovery replays, then asks for the highest sequence number: its head read starts from here.
      if (last !== undefined) this.noteStored(persistenceId, toNumber(last['sequence_nr']));
      for (const row of page) {
        if (delivered >= max || options.signal?.aborted === true) return;
        yield this.messages.toEvent(row);
        delivered++;
      }
    }
  }

  async highestSequenceNr(persistenceId: string): Promise<number> {
    this.ensureOpen();
    const entry = this.entry(persistenceId);
    // Through the queue of the id: the answer includes every append issued before.
    return this.exclusive(persistenceId, async () => {
      try {
        entry.head = await this.readHead(persistenceId, entry);
      } catch (error) {
        if (isDataflowError(error)) throw error;
        throw new JournalReadError(`Reading the highest sequence number of ${persistenceId} failed`, { retriable: true, cause: error });
      }
      await this.repairTagViews(persistenceId, entry.head);
      return entry.head.highest;
    });
  }

  async deleteTo(persistenceId: string, toSequenceNr: number): Promise<void> {
    if (this.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
    const { settings } = this.session;
    await this.exclusive(persistenceId, async () => {
      try {
        const head = await this.readHead(persistenceId, this.entry(persistenceId));
        const deletedTo = await this.messages.deletedTo(persistenceId);
        const upTo = await this.coveredBySnapshot(persistenceId, Math.min(toSequenceNr, head.highest), toSequenceNr);
        if (upTo <= deletedTo) return;
        await this.session.execute(this.q.setDeletedTo, [upTo, persistenceId], { consistency: settings.writeConsistency, idempotent: true });
        const first = partitionOf(Math.max(deletedTo, 1), settings.targetPartitionSize);
        // The events up to `upTo` may sit one partition further (an append lives in the partition of its last event).
        const last = partitionOf(upTo, settings.targetPartitionSize) + 1;
        for (let p = first; p <= last; p++) {
          await this.session.execute(this.q.deleteRows, [persistenceId, p, upTo], { consistency: settings.writeConsistency, idempotent: true });
        }
      } catch (error) {
        throw asWriteError(persistenceId, 'deleteTo failed', error);
      }
    });
  }

  /**
   * How far events of an id may be deleted: up to `upTo`, unless the id has
   * snapshots and the newest one readable at the journal's read consistency
   * is older; then only up to that one (never delete events that no durable
   * snapshot covers: recovery would start at an older snapshot and find the
   * deleted events missing). An id without snapshots is deleted as asked.
   */
  private async coveredBySnapshot(persistenceId: string, upTo: number, requestedTo: number): Promise<number> {
    const { readConsistency, onEvent } = this.session.settings;
    const result = await this.session.execute(this.q.newestSnapshot, [persistenceId], { consistency: readConsistency, idempotent: true });
    const newest = toOptionalNumber(result.first()?.['sequence_nr']);
    if (newest === undefined || newest >= upTo) return upTo;
    onEvent({ type: 'delete.limited', persistenceId, requestedTo, deletedTo: newest });
    return newest;
  }

  /**
   * Refuses further calls, waits for the appends already taken (queued or in
   * flight, in both modes) to settle, then releases the writer leases.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Nothing new is queued once closed; an operation still running may only chain more of the same id's queue.
    for (;;) {
      const tails = [...this.entries.values()].flatMap((e) => [...(e.active > 0 ? [e.tail] : []), ...(e.renewal === undefined ? [] : [e.renewal])]);
      if (tails.length === 0) break;
      await Promise.all(tails);
    }
    await this.tagWriter.drain();
    await this.releaseLeases();
  }

  private serialize(persistenceId: string, event: NewEvent, sliceTag: string): SerializedEvent {
    const manifest = { eventType: event.eventType, schemaVersion: event.schemaVersion ?? 1 };
    let stored;
    try {
      stored = this.serializers.serialize(event.payload, manifest);
    } catch (error) {
      if (isDataflowError(error)) throw error;
      throw new JournalWriteError(persistenceId, 'serialization failed', { retriable: false, cause: error });
    }
    return {
      eventType: event.eventType,
      manifest: formatManifest(manifest),
      serializerId: stored.serializerId,
      bytes: Buffer.from(stored.bytes.buffer, stored.bytes.byteOffset, stored.bytes.byteLength),
      // The implicit slice tag's row is written with the user tags' rows (same batches, same repair).
      tags: [...new Set((event.tags ?? []).map((tag) => checkUserTag(persistenceId, tag))), sliceTag],
    };
  }

  private entry(persistenceId: string): PidEntry {
    let entry = this.entries.get(persistenceId);
    if (entry === undefined) {
      if (this.entries.size >= SWEEP_AT && this.entries.size % SWEEP_AT === 0) this.forgetIdle();
      entry = {
        head: undefined,
        knownStored: 0,
        lease: undefined,
        renewal: undefined,
        pending: [],
        flushQueued: false,
        active: 0,
        tail: Promise.resolve(),
      };
      this.entries.set(persistenceId, entry);
    }
    return entry;
  }

  /** Remembers that `sequenceNr` is stored, so that head reads of the id start at its partition. */
  private noteStored(persistenceId: string, sequenceNr: number): void {
    const entry = this.entries.get(persistenceId);
    if (entry !== undefined) entry.knownStored = Math.max(entry.knownStored, sequenceNr);
    else if (this.entries.size < SWEEP_AT) this.entry(persistenceId).knownStored = sequenceNr;
  }

  /** Runs `task` after every earlier operation on the persistence id. */
  private exclusive<T>(persistenceId: string, task: () => Promise<T>): Promise<T> {
    const entry = this.entry(persistenceId);
    entry.active++;
    const result = entry.tail.then(task);
    const settled = (): void => {
      entry.active--;
    };
    entry.tail = result.then(settled, settled);
    return result;
  }

  /**
   * Drops what is cached about ids with nothing in flight and no live lease, so
   * that memory follows the ids in use rather than every id ever written (the
   * head is read again on the next use).
   */
  private forgetIdle(): void {
    const now = this.session.settings.leaseClock();
    for (const [persistenceId, entry] of this.entries) {
      const leased = entry.lease !== undefined && now < entry.lease.validUntil;
      if (entry.active === 0 && entry.pending.length === 0 && !entry.flushQueued && !leased) this.entries.delete(persistenceId);
    }
  }

  /** Writes the queued appends of one id: consecutive ones from the same writer share a batch. */
  private async flushPending(persistenceId: string): Promise<void> {
    const entry = this.entry(persistenceId);
    entry.flushQueued = false;
    while (entry.pending.length > 0) {
      const group = takeGroup(entry.pending, this.session.settings.maxBatchSize);
      try {
        const lastSequenceNr = await this.writeGroup(persistenceId, entry, group);
        let last = group[0]?.options.expectedSequenceNr ?? 0;
        for (const append of group) {
          last += append.events.length;
          append.resolve({ lastSequenceNr: Math.min(last, lastSequenceNr) });
        }
      } catch (error) {
        // Whatever failed, the next append checks the store again.
        entry.head = undefined;
        for (const append of group) append.reject(error);
      }
    }
  }

  private async writeGroup(persistenceId: string, entry: PidEntry, group: readonly PendingAppend[]): Promise<number> {
    const first = group[0];
    if (first === undefined) throw new JournalWriteError(persistenceId, 'empty append group', { retriable: false });
    const expected = first.options.expectedSequenceNr;
    const { settings } = this.session;
    let head: HeadState;
    try {
      if (settings.singleWriter === 'lease') await this.leaseForWrite(persistenceId, entry);
      head = entry.head ?? (entry.head = await this.readHead(persistenceId, entry));
      // A cached head can be stale when another process wrote meanwhile: check the store before refusing.
      if (head.highest !== expected) head = entry.head = await this.readHead(persistenceId, entry);
    } catch (error) {
      throw asWriteError(persistenceId, 'reading the highest sequence number failed', error);
    }
    if (head.highest !== expected) throw new ConcurrencyConflictError(persistenceId, expected, head.highest);
    if (head.tagsDurableTo < head.highest) await this.repairTagViews(persistenceId, head);

    const events = group.flatMap((append) => append.events);
    if (events.length === 0) return expected;
    const last = expected + events.length;
    const counters = new Map(head.tagCounters);
    const changed: Record<string, number> = {};
    const rows: Array<{ event: SerializedEvent; sequenceNr: number; uuid: types.TimeUuid; ms: number; tagSeqs: Record<string, number> }> = [];
    events.forEach((event, i) => {
      const tagSeqs: Record<string, number> = {};
      for (const tag of event.tags) {
        const n = (counters.get(tag) ?? 0) + 1;
        counters.set(tag, n);
        changed[tag] = n;
        tagSeqs[tag] = n;
      }
      const { uuid, ms } = this.uuids.stamp();
      rows.push({ event, sequenceNr: expected + i + 1, uuid, ms, tagSeqs });
    });
    const writerId = first.options.writerId;
    const partition = Math.max(partitionOf(last, settings.targetPartitionSize), head.partition);
    const inserts: BatchStatement[] = rows.map((r) => ({
      query: this.q.insert,
      params: [
        persistenceId, partition, r.sequenceNr, r.uuid, bucketOf(r.ms, settings.timeBucketMs), writerId,
        r.event.serializerId, r.event.manifest, r.event.manifest, r.event.bytes, r.event.tags, r.tagSeqs,
      ],
    }));
    const firstRow = rows[0];
    if (firstRow === undefined) return expected;
    // Normally partitionOf(expected); after a crash between the two steps of a partition change
    // (conditional mode) the head sits in the older partition, and the next append completes the move.
    const previousPartition = expected === 0 ? partition : head.partition;

    if (settings.singleWriter === 'lease') {
      // We hold the lease: nobody else writes this id, so the cached head is the truth.
      const headUpdate =
        partition === previousPartition
          ? { query: this.q.headSamePartition, params: [last, changed, head.tagsDurableTo, persistenceId, partition] }
          : { query: this.q.headNew, params: [last, Object.fromEntries(counters), head.tagsDurableTo, persistenceId, partition] };
      await this.sendUnderLease(persistenceId, entry, head, expected, [headUpdate, ...inserts]);
    } else if (partition === previousPartition) {
      const guard = {
        query: this.q.casSamePartition,
        params: [last, changed, head.tagsDurableTo, persistenceId, partition, expected === 0 ? null : expected],
      };
      await this.conditional(persistenceId, expected, () => this.session.batch([guard, ...inserts], this.casOptions()), partition, firstRow);
    } else {
      // The append starts a new partition: claim the old one's head first, then write the new one.
      await this.conditional(
        persistenceId,
        expected,
        () => this.session.execute(this.q.casClaim, [last, persistenceId, previousPartition, expected], this.casOptions()),
        previousPartition,
        undefined,
      );
      const guard = { query: this.q.casNew, params: [last, Object.fromEntries(counters), head.tagsDurableTo, persistenceId, partition] };
      await this.conditional(persistenceId, expected, () => this.session.batch([guard, ...inserts], this.casOptions()), partition, firstRow);
    }
    head.highest = last;
    head.partition = partition;
    head.tagCounters = counters;
    entry.knownStored = Math.max(entry.knownStored, last);

    const tagRows: PendingTagRow[] = rows.flatMap((r) =>
      r.event.tags.map((tag) => ({
        tag,
        persistenceId,
        sequenceNr: r.sequenceNr,
        tagPidSequenceNr: r.tagSeqs[tag] ?? 0,
        eventTimestamp: r.ms,
        writerId,
        serializerId: r.event.serializerId,
        eventManifest: r.event.manifest,
        event: r.event.bytes,
        tags: r.event.tags,
      })),
    );
    // The events are stored: a failure from here on is repaired before the next append and at recovery.
    try {
      await Promise.all([
        // Once the rows are stored, tagged_to moves to `last` (this batch could only record `expected`).
        this.tagWriter.write(tagRows, head.tagsDurableTo === expected ? { persistenceId, partition, from: expected, to: last } : undefined),
        expected === 0 ? this.session.execute(this.q.addPid, [persistenceId], { consistency: settings.writeConsistency, idempotent: true }) : undefined,
      ]);
      if (head.tagsDurableTo === expected) head.tagsDurableTo = last;
    } catch (error) {
      settings.onEvent({ type: 'tag-write.failed', persistenceId, error });
    }
    return last;
  }

  /**
   * Makes sure `entry.lease` is valid for the next write. Before its renewal
   * time the held lease serves as is. Past it, while at least a quarter of
   * its validity is left, it still serves and a renewal runs in the
   * background: a write never waits for the Paxos round of a lease it holds
   * (that wait was the tail of entity writes). Otherwise the lease is renewed
   * or taken before the write; taken anew, the head is read again (another
   * holder may have written meanwhile).
   */
  private async leaseForWrite(persistenceId: string, entry: PidEntry): Promise<void> {
    const { leaseClock, leaseValidityMs, onEvent } = this.session.settings;
    const held = entry.lease;
    const now = leaseClock();
    if (held !== undefined && now < held.renewAfter) return;
    if (held !== undefined && now < held.validUntil - leaseValidityMs / 4) {
      entry.renewal ??= this.leases.ensure(persistenceId, held).then(
        ({ lease, fresh }) => {
          entry.lease = lease;
          if (fresh) entry.head = undefined;
          entry.renewal = undefined;
        },
        (error: unknown) => {
          // The held lease runs out; the next write past its last quarter renews or takes it in line.
          onEvent({ type: 'lease.renewal-failed', persistenceId, error });
          entry.renewal = undefined;
        },
      );
      return;
    }
    if (entry.renewal !== undefined) {
      await entry.renewal;
      return this.leaseForWrite(persistenceId, entry);
    }
    const { lease, fresh } = await this.leases.ensure(persistenceId, entry.lease);
    entry.lease = lease;
    if (fresh) entry.head = undefined;
  }

  /**
   * Lease mode: sends the batch of an append while the lease is valid. The
   * end of validity is checked right before the batch leaves (after any wait
   * for a slot); when it passed, nothing was sent, so the lease is renewed in
   * line and the batch tried again (at most `SEND_ATTEMPTS` times). A lease
   * taken anew meanwhile means another holder may have written: the head is
   * read again and must still be `expected`.
   */
  private async sendUnderLease(persistenceId: string, entry: PidEntry, head: HeadState, expected: number, batch: BatchStatement[]): Promise<void> {
    const { writeConsistency } = this.session.settings;
    for (let attempt = 1; ; attempt++) {
      const lease = entry.lease;
      if (lease === undefined) throw new JournalWriteError(persistenceId, 'no writer lease is held', { retriable: true });
      try {
        // Never re-sent by the driver (not idempotent, no retry policy).
        await this.session.batch(batch, { consistency: writeConsistency, idempotent: false, sendBy: lease.validUntil });
        return;
      } catch (error) {
        if (error instanceof SendDeadlinePassedError && attempt < SEND_ATTEMPTS) {
          await this.leaseForWrite(persistenceId, entry);
          if (entry.head === undefined) {
            const current = await this.readHead(persistenceId, entry);
            if (current.highest !== expected) throw new ConcurrencyConflictError(persistenceId, expected, current.highest);
            entry.head = head;
          }
          continue;
        }
        entry.head = undefined;
        if (error instanceof SendDeadlinePassedError) {
          throw new JournalWriteError(persistenceId, 'the writer lease ran out before the write could be sent', { retriable: true, cause: error });
        }
        if (isUnknownWriteOutcome(error)) throw new JournalWriteOutcomeUnknownError(persistenceId, 'the write timed out', { cause: error });
        throw asWriteError(persistenceId, 'the write failed', error);
      }
    }
  }

  /** Gives up every lease this journal holds, so that another process may write at once. */
  private async releaseLeases(): Promise<void> {
    const held = [...this.entries].filter(([, entry]) => entry.lease !== undefined);
    const results = await Promise.allSettled(
      held.map(([persistenceId, entry]) =>
        this.exclusive(persistenceId, async () => {
          entry.lease = undefined;
          await this.leases.release(persistenceId);
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      throw new JournalWriteError(held[results.indexOf(failed)]?.[0] ?? '', 'releasing the writer lease failed; it lapses after leaseTtlMs', {
        retriable: true,
        cause: failed.reason,
      });
    }
  }

  private casOptions(): { consistency: types.consistencies; idempotent: boolean; serialConsistency: types.consistencies } {
    return { consistency: this.session.settings.writeConsistency, idempotent: false, serialConsistency: types.consistencies.serial };
  }

  /**
   * Runs a conditional write. Not applied means another writer got there first,
   * unless the row we meant to write is there with our timestamp (a retry of our
   * own applied write); a timeout is resolved the same way with a SERIAL read.
   */
  private async conditional(
    persistenceId: string,
    expected: number,
    write: () => Promise<types.ResultSet>,
    partition: number,
    own: { sequenceNr: number; uuid: types.TimeUuid } | undefined,
  ): Promise<void> {
    let result: types.ResultSet;
    try {
      result = await write();
    } catch (error) {
      if (!isUnknownWriteOutcome(error)) throw asWriteError(persistenceId, 'the conditional write failed', error);
      // A claim of a partition move that may have been applied: the next head read releases it (`releaseClaim`).
      if (own === undefined) throw new JournalWriteOutcomeUnknownError(persistenceId, 'claiming the partition head timed out', { cause: error });
      let mine: boolean;
      try {
        // A SERIAL read completes or fences off the timed-out Paxos round, so its answer is final.
        mine = await this.isOwnWrite(persistenceId, partition, own);
      } catch (readError) {
        throw new JournalWriteOutcomeUnknownError(persistenceId, 'the write timed out and its outcome could not be read', { cause: readError });
      }
      if (mine) return;
      throw new JournalWriteError(persistenceId, 'the write timed out and was not applied', { retriable: true, cause: error });
    }
    if (result.wasApplied()) return;
    if (own !== undefined && (await this.isOwnWrite(persistenceId, partition, own))) return;
    const actual = toOptionalNumber(result.first()?.['highest_sequence_nr']);
    throw new ConcurrencyConflictError(persistenceId, expected, actual);
  }

  private async isOwnWrite(persistenceId: string, partition: number, own: { sequenceNr: number; uuid: types.TimeUuid }): Promise<boolean> {
    const result = await this.session.execute(this.q.timestampAt, [persistenceId, partition, own.sequenceNr], {
      consistency: types.consistencies.serial,
      idempotent: true,
    });
    const stored = result.first()?.['timestamp'] as types.TimeUuid | undefined;
    return stored !== undefined && stored !== null && stored.equals(own.uuid);
  }

  /**
   * The head as stored: the static columns of the id's last partition, found
   * by walking partitions from the one of the highest sequence number this
   * journal knows to be stored (from 0 only for an id it knows nothing of).
   * With conditional writes it is read at SERIAL, so that no half-done
   * conditional write is missed; lease holders write plainly and read at
   * `readConsistency`.
   */
  private async readHead(persistenceId: string, entry: PidEntry, released = false): Promise<HeadState> {
    const { singleWriter, readConsistency, targetPartitionSize } = this.session.settings;
    const consistency = singleWriter === 'conditional' ? types.consistencies.serial : readConsistency;
    let partition = partitionOf(Math.max(entry.knownStored, 1), targetPartitionSize);
    let row = await this.messages.statics(persistenceId, partition, consistency);
    if (row === undefined && partition > 0) {
      partition = 0;
      row = await this.messages.statics(persistenceId, partition, consistency);
    }
    if (row === undefined) return { highest: 0, partition: 0, tagCounters: new Map(), tagsDurableTo: 0 };
    for (;;) {
      const next = await this.messages.statics(persistenceId, partition + 1, consistency);
      if (next === undefined) break;
      row = next;
      partition++;
    }
    const highest = toNumber(row['highest_sequence_nr']);
    const head: HeadState = {
      highest,
      partition,
      tagCounters: toNumberMap(row['tag_sequence_nrs']),
      tagsDurableTo: Math.min(highest, toOptionalNumber(row['tagged_to']) ?? 0),
    };
    // The head names numbers of a later partition that does not exist: a partition move was claimed, never written.
    if (singleWriter === 'conditional' && !released && partitionOf(highest, targetPartitionSize) > partition) {
      return this.releaseClaim(persistenceId, entry, head);
    }
    entry.knownStored = Math.max(entry.knownStored, highest);
    return head;
  }

  /**
   * Conditional mode: `claimed.partition`'s head claims numbers up to
   * `claimed.highest` for a move into the next partition, which was never
   * written (the claimer failed or timed out between its two steps). Left so,
   * the claimed numbers would be a hole that recovery rejects forever.
   *
   * The next partition is fenced with a conditional write `IF
   * highest_sequence_nr = null` — the very condition of the claimer's second
   * step, which therefore can never apply afterwards — that sets its head to
   * the last stored event and carries the tag counters over. The id goes on in
   * that partition from there (`HeadState.partition`); replay walks into it.
   * If the claimer's write won the race instead, the head is read again.
   */
  private async releaseClaim(persistenceId: string, entry: PidEntry, claimed: HeadState): Promise<HeadState> {
    const { targetPartitionSize, writeConsistency } = this.session.settings;
    const stored = await this.lastStoredBefore(persistenceId, claimed.partition, claimed.highest);
    const next = partitionOf(claimed.highest, targetPartitionSize);
    const taggedTo = Math.min(claimed.tagsDurableTo, stored);
    const fence = await this.session.execute(
      this.q.casNew,
      [stored, Object.fromEntries(claimed.tagCounters), taggedTo, persistenceId, next],
      { consistency: writeConsistency, idempotent: false, serialConsistency: types.consistencies.serial },
    );
    if (fence.wasApplied()) {
      this.session.settings.onEvent({ type: 'partition-claim.released', persistenceId, claimedTo: claimed.highest, highestSequenceNr: stored });
    }
    return this.readHead(persistenceId, entry, true);
  }

  /** The highest sequence number stored (or deleted) at or before `partition`, below `limit`. */
  private async lastStoredBefore(persistenceId: string, partition: number, limit: number): Promise<number> {
    const deletedTo = Math.min(await this.messages.deletedTo(persistenceId), limit);
    for (let p = partition; p >= 0; p--) {
      const result = await this.session.execute(this.q.lastRow, [persistenceId, p], { consistency: types.consistencies.serial, idempotent: true });
      const found = toOptionalNumber(result.first()?.['sequence_nr']);
      if (found !== undefined) return Math.max(found, deletedTo);
    }
    return deletedTo;
  }

  /** Writes the tag rows of events after `head.tagsDurableTo` again (idempotent for readers). */
  private async repairTagViews(persistenceId: string, head: HeadState): Promise<void> {
    if (head.tagsDurableTo >= head.highest) return;
    const from = head.tagsDurableTo + 1;
    const to = head.highest;
    try {
      const tagRows: PendingTagRow[] = [];
      for await (const row of this.messages.storedRows(persistenceId, from, to)) {
        const tagSeqs = toNumberMap(row['tag_pid_sequence_nrs']);
        const tags = [...((row['tags'] as string[] | null) ?? [])];
        const bytes = row['event'] as Buffer;
        for (const tag of tags) {
          tagRows.push({
            tag,
            persistenceId,
            sequenceNr: toNumber(row['sequence_nr']),
            tagPidSequenceNr: tagSeqs.get(tag) ?? 0,
            eventTimestamp: timeOf(row['timestamp']),
            writerId: row['writer_uuid'] as string,
            serializerId: row['ser_id'] as string,
            eventManifest: row['event_manifest'] as string,
            event: bytes,
            tags,
          });
        }
      }
      await this.tagWriter.write(tagRows, { persistenceId, partition: head.partition, from: head.tagsDurableTo, to });
      await this.session.execute(this.q.addPid, [persistenceId], { consistency: this.session.settings.writeConsistency, idempotent: true });
      head.tagsDurableTo = to;
      this.session.settings.onEvent({ type: 'tag-views.repaired', persistenceId, fromSequenceNr: from, toSequenceNr: to });
    } catch (error) {
      this.session.settings.onEvent({ type: 'tag-write.failed', persistenceId, error });
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new JournalReadError('The Cassandra journal is closed', { retriable: false });
  }
}

/** Lease mode: times an append is tried when its lease ran out before it could be sent (nothing was sent). */
const SEND_ATTEMPTS = 3;

/** The cache of per-id state is swept each time it grows by this many ids. */
const SWEEP_AT = 4096;

/** The head of `pending` plus the appends right behind it that continue it (same writer, next sequence number). */
function takeGroup(pending: PendingAppend[], maxBatchSize: number): PendingAppend[] {
  const first = pending.shift();
  if (first === undefined) return [];
  const group = [first];
  let next = first.options.expectedSequenceNr + first.events.length;
  let size = first.events.length;
  for (;;) {
    const candidate = pending[0];
    if (
      candidate === undefined ||
      candidate.options.expectedSequenceNr !== next ||
      candidate.options.writerId !== first.options.writerId ||
      size + candidate.events.length > maxBatchSize
    ) {
      return group;
    }
    pending.shift();
    group.push(candidate);
    next += candidate.events.length;
    size += candidate.events.length;
  }
}
