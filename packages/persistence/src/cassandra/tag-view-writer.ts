/**
 * The write buffer of `tag_views`: rows from every concurrent append are
 * grouped per (tag, time bucket) partition into unlogged batches of at most
 * `maxBatchSize` rows. Each row's timeuuid is taken when its batch is sent,
 * so it becomes readable soon after its timestamp; a batch that took longer
 * than half the readers' eventual-consistency delay is written again under a
 * fresh timestamp (readers drop the duplicate by its tag sequence number), so
 * a reader that stays `eventualConsistencyDelayMs` behind never misses a row.
 */
import type { types } from 'cassandra-driver';
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

/** Writes of a row that keep landing late give up after this many timestamps. */
const MAX_STAMPS = 5;

export class TagViewWriter {
  private queue: Queued[] = [];
  private scheduled = false;
  private readonly knownBuckets = new Set<string>();
  private readonly uuids: TimeUuidSource;
  private readonly insertRow: string;
  private readonly insertBucket: string;

  constructor(private readonly session: CassandraSession) {
    this.uuids = new TimeUuidSource(session.settings.now);
    const ks = session.keyspace;
    this.insertRow =
      `INSERT INTO ${ks}.tag_views (tag_name, timebucket, timestamp, persistence_id, sequence_nr, tag_pid_sequence_nr, ` +
      'event_timestamp, writer_uuid, ser_id, ser_manifest, event_manifest, event, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    this.insertBucket = `INSERT INTO ${ks}.tag_buckets (tag_name, timebucket) VALUES (?, ?)`;
  }

  /** Resolves when every row is stored; rows of one call keep their order. */
  write(rows: readonly PendingTagRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { remaining: rows.length, failed: false, resolve, reject };
      for (const row of rows) this.queue.push({ row, waiter, attempt: 1 });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // One macrotask lets the appends completing together share batches.
    setImmediate(() => {
      this.scheduled = false;
      const queued = this.queue;
      this.queue = [];
      void this.flush(queued);
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
    const late = latencyMs * 2 > eventualConsistencyDelayMs;
    for (const { item } of batch) {
      if (late && item.attempt < MAX_STAMPS) {
        this.queue.push({ ...item, attempt: item.attempt + 1 });
      } else if (late) {
        const message = `tag_views rows kept landing later than half the eventual-consistency delay (${latencyMs} ms)`;
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
