/**
 * The write buffer of `tag_views`: rows from every concurrent append are
 * grouped per (tag, time bucket) partition into unlogged batches of at most
 * `maxBatchSize` rows. Each row's timeuuid is taken when its batch is sent,
 * so it becomes readable soon after its timestamp; a batch that took longer
 * than the readers' eventual-consistency delay is written again under a fresh
 * timestamp (readers drop the duplicate by its tag sequence number). Readers
 * re-read `eventualConsistencyDelayMs + maxClockSkewMs` behind their forward
 * read, so a row readable within `eventualConsistencyDelayMs` of its
 * timestamp (by the writer's clock) is never missed, even from a writer whose
 * clock is up to `maxClockSkewMs` behind the reader's.
 *
 * It also moves each id's `tagged_to` (the static column recovery reads to
 * know which tag rows may be missing) once the rows of an append are stored.
 * An append's own batch can only record what was stored before it, so an id
 * that stops appending would keep `tagged_to` one append behind and have its
 * last tag rows re-written at every recovery. The writer records the new
 * value itself when no later append has carried it within
 * `TAGGED_TO_DELAY_MS`, and at once in `drain()` (called by the journal's
 * `close()`): after a clean close a restart repairs nothing.
 */
import { types } from 'cassandra-driver';
import { JournalWriteError } from '@dataflow/core';
import type { BatchStatement, CassandraSession } from './cassandra-session.js';
import { bucketOf, TimeUuidSource } from './event-row.js';

/** One `tag_views` row before it gets its timestamp. */
export interface PendingTagRow {
  readonly tag: string;
  readonly persistenceId: string;
  readonly sequenceNr: number;
  readonly tagPidSequenceNr: number;
  readonly eventTimestamp: number;
  readonly writerId: string;
  readonly serializerId: string;
  readonly eventManifest: string;
  readonly event: Buffer;
  readonly tags: readonly string[];
}

interface Waiter {
  remaining: number;
  failed: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Queued {
  readonly row: PendingTagRow;
  readonly waiter: Waiter;
  readonly attempt: number;
}

/**
 * What the rows of one append complete for its id: `tagged_to` may move from
 * `from` (the value the append's own batch wrote) to `to` once they are stored.
 */
export interface TagProgress {
  readonly persistenceId: string;
  /** The `messages` partition whose static columns hold the id's head. */
  readonly partition: number;
  readonly from: number;
  readonly to: number;
}

interface PendingTaggedTo {
  readonly partition: number;
  readonly to: number;
  readonly due: number;
}

/** Writes of a row that keep landing late give up after this many timestamps. */
const MAX_STAMPS = 5;

/**
 * How long a stored `tagged_to` may stay behind before the writer records it
 * on its own: a busy id's next append carries it for free within this time.
 */
export const TAGGED_TO_DELAY_MS = 1000;

export class TagViewWriter {
  private queue: Queued[] = [];
  private scheduled = false;
  private readonly knownBuckets = new Set<string>();
  private readonly uuids: TimeUuidSource;
  private readonly insertRow: string;
  private readonly insertBucket: string;
  private readonly updateTaggedTo: string;
  /** Flushes of queued rows still running (restamped rows are queued again before their flush ends). */
  private readonly flushing = new Set<Promise<void>>();
  /** Ids whose `tagged_to` is behind what is stored, by persistence id. */
  private readonly taggedTo = new Map<string, PendingTaggedTo>();
  private taggedToTimer: NodeJS.Timeout | undefined;

  constructor(private readonly session: CassandraSession) {
    this.uuids = new TimeUuidSource(session.settings.now);
    const ks = session.keyspace;
    this.insertRow =
      `INSERT INTO ${ks}.tag_views (tag_name, timebucket, timestamp, persistence_id, sequence_nr, tag_pid_sequence_nr, ` +
      'event_timestamp, writer_uuid, ser_id, ser_manifest, event_manifest, event, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    this.insertBucket = `INSERT INTO ${ks}.tag_buckets (tag_name, timebucket) VALUES (?, ?)`;
    // In conditional mode the head's columns are only written by Paxos: a plain write could be
    // ordered before the batches it follows. The condition only holds while no later append landed
    // (a later append's own batch then carries the value).
    this.updateTaggedTo =
      session.settings.singleWriter === 'conditional'
        ? `UPDATE ${ks}.messages SET tagged_to = ? WHERE persistence_id = ? AND partition_nr = ? IF highest_sequence_nr = ?`
        : `UPDATE ${ks}.messages SET tagged_to = ? WHERE persistence_id = ? AND partition_nr = ?`;
  }

  /**
   * Resolves when every row is stored; rows of one call keep their order.
   * With `progress`, the id's `tagged_to` is then moved to `progress.to` (by
   * the id's next append, or by this writer after `TAGGED_TO_DELAY_MS`).
   */
  write(rows: readonly PendingTagRow[], progress?: TagProgress): Promise<void> {
    if (progress !== undefined) {
      // The append's batch wrote `from`: a pending update up to there is done.
      const pending = this.taggedTo.get(progress.persistenceId);
      if (pending !== undefined && pending.to <= progress.from) this.taggedTo.delete(progress.persistenceId);
    }
    const stored =
      rows.length === 0
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const waiter: Waiter = { remaining: rows.length, failed: false, resolve, reject };
            for (const row of rows) this.queue.push({ row, waiter, attempt: 1 });
            this.schedule();
          });
    if (progress === undefined) return stored;
    return stored.then(() => this.recordLater(progress));
  }

  /**
   * Waits until every queued row is stored (or has failed) and records every
   * pending `tagged_to` now. The journal calls it from `close()`, after its
   * appends in flight and before it gives up its writer leases.
   */
  async drain(): Promise<void> {
    while (this.scheduled || this.queue.length > 0 || this.flushing.size > 0) {
      if (this.flushing.size > 0) await Promise.allSettled([...this.flushing]);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await this.recordTaggedTo(Number.POSITIVE_INFINITY);
  }

  private recordLater(progress: TagProgress): void {
    const pending = this.taggedTo.get(progress.persistenceId);
    if (pending !== undefined && pending.to >= progress.to) return;
    const due = this.session.settings.now() + TAGGED_TO_DELAY_MS;
    this.taggedTo.set(progress.persistenceId, { partition: progress.partition, to: progress.to, due });
    this.armTaggedToTimer();
  }

  private armTaggedToTimer(): void {
    if (this.taggedToTimer !== undefined || this.taggedTo.size === 0) return;
    // recordTaggedTo reports its failures as events; it never rejects.
    this.taggedToTimer = setTimeout(() => {
      this.taggedToTimer = undefined;
      void this.recordTaggedTo(this.session.settings.now());
    }, TAGGED_TO_DELAY_MS);
    // Pending updates never keep a process alive: a lagging tagged_to costs a repair at recovery, no data.
    this.taggedToTimer.unref();
  }

  /**
   * Writes the pending `tagged_to` values due by `dueBy`, and re-arms the
   * timer for the rest. A failed write is reported (`tag-write.failed`) and
   * left to recovery, which re-writes the rows after the stored value.
   */
  private async recordTaggedTo(dueBy: number): Promise<void> {
    const due = [...this.taggedTo].filter(([, pending]) => pending.due <= dueBy);
    for (const [persistenceId] of due) this.taggedTo.delete(persistenceId);
    if (dueBy === Number.POSITIVE_INFINITY && this.taggedToTimer !== undefined) {
      clearTimeout(this.taggedToTimer);
      this.taggedToTimer = undefined;
    }
    const { singleWriter, writeConsistency } = this.session.settings;
    await Promise.all(
      due.map(async ([persistenceId, { partition, to }]) => {
        const params = singleWriter === 'conditional' ? [to, persistenceId, partition, to] : [to, persistenceId, partition];
        try {
          await this.session.execute(this.updateTaggedTo, params, {
            consistency: writeConsistency,
            idempotent: singleWriter !== 'conditional',
            ...(singleWriter === 'conditional' ? { serialConsistency: types.consistencies.serial } : {}),
          });
        } catch (error) {
          this.session.settings.onEvent({ type: 'tag-write.failed', persistenceId, error });
        }
      }),
    );
    this.armTaggedToTimer();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // One macrotask lets the appends completing together share batches.
    setImmediate(() => {
      this.scheduled = false;
      const queued = this.queue;
      this.queue = [];
      // flush settles every waiter itself; it never rejects.
      const flushing = this.flush(queued);
      this.flushing.add(flushing);
      void flushing.finally(() => this.flushing.delete(flushing));
    });
  }

  private async flush(queued: readonly Queued[]): Promise<void> {
    const { timeBucketMs, maxBatchSize } = this.session.settings;
    const groups = new Map<string, Array<{ item: Queued; uuid: types.TimeUuid; bucket: number }>>();
    for (const item of queued) {
      const uuid = this.uuids.next();
      const bucket = bucketOf(uuid.getDate().getTime(), timeBucketMs);
      const key = `${bucket}\u0000${item.row.tag}`;
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = []));
      group.push({ item, uuid, bucket });
    }
    const batches: Array<Promise<void>> = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += maxBatchSize) batches.push(this.writeBatch(group.slice(i, i + maxBatchSize)));
    }
    await Promise.all(batches);
  }

  private async writeBatch(batch: ReadonlyArray<{ item: Queued; uuid: types.TimeUuid; bucket: number }>): Promise<void> {
    const first = batch[0];
    if (first === undefined) return;
    const { now, eventualConsistencyDelayMs, writeConsistency } = this.session.settings;
    const stampedAt = first.uuid.getDate().getTime();
    try {
      await this.ensureBucket(first.item.row.tag, first.bucket);
      const statements: BatchStatement[] = batch.map(({ item: { row }, uuid, bucket }) => ({
        query: this.insertRow,
        params: [
          row.tag, bucket, uuid, row.persistenceId, row.sequenceNr, row.tagPidSequenceNr, row.eventTimestamp,
          row.writerId, row.serializerId, row.eventManifest, row.eventManifest, row.event, [...row.tags],
        ],
      }));
      await this.session.batch(statements, { consistency: writeConsistency, idempotent: true });
    } catch (error) {
      for (const { item } of batch) fail(item.waiter, error);
      return;
    }
    const latencyMs = now() - stampedAt;
    const late = latencyMs > eventualConsistencyDelayMs;
    for (const { item } of batch) {
      if (late && item.attempt < MAX_STAMPS) {
        this.queue.push({ ...item, attempt: item.attempt + 1 });
      } else if (late) {
        const message = `tag_views rows kept landing later than the eventual-consistency delay (${latencyMs} ms)`;
        fail(item.waiter, new JournalWriteError(item.row.persistenceId, message, { retriable: true }));
      } else {
        done(item.waiter);
      }
    }
    if (late) {
      this.session.settings.onEvent({ type: 'tag-write.restamped', rows: batch.length, latencyMs });
      this.schedule();
    }
  }

  private async ensureBucket(tag: string, bucket: number): Promise<void> {
    const key = `${bucket}\u0000${tag}`;
    if (this.knownBuckets.has(key)) return;
    await this.session.execute(this.insertBucket, [tag, bucket], {
      consistency: this.session.settings.writeConsistency,
      idempotent: true,
    });
    // Buckets are per hour by default: a bounded memory of them saves re-inserting the same row.
    if (this.knownBuckets.size >= 10_000) this.knownBuckets.clear();
    this.knownBuckets.add(key);
  }
}

function done(waiter: Waiter): void {
  waiter.remaining--;
  if (waiter.remaining === 0 && !waiter.failed) waiter.resolve();
}

function fail(waiter: Waiter, error: unknown): void {
  if (waiter.failed) return;
  waiter.failed = true;
  waiter.reject(error);
}
