/**
 * The Cassandra read journal. `eventsByTag` reads `tag_views` bucket by
 * bucket, never closer to now than `eventualConsistencyDelayMs`, and checks
 * each persistence id's tag sequence numbers: a hole is filled from
 * `messages` (the source of truth), waited for up to `gapTimeoutMs`, and
 * otherwise reported as `ReplayGapError`; events are never skipped. The offset
 * carries the sequence number delivered last per persistence id (`seen`), so
 * a resumed stream delivers neither duplicates nor holes.
 */
import { types } from 'cassandra-driver';
import {
  JournalReadError,
  ReplayGapError,
  type EventEnvelope,
  type PersistedEvent,
  type Offset,
  type QueryOptions,
  type ReadJournal,
  type SerializerRegistry,
} from '@dataflow/core';
import { asReadError } from './cassandra-settings.js';
import type { MessagesReader } from './messages-reader.js';
import type { CassandraSession, Row } from './cassandra-session.js';
import { bucketOf, partitionOf, rowToEvent, timeOf, toNumber, toNumberMap } from './event-row.js';

/** Where one persistence id stands in a tag stream. */
interface PidProgress {
  sequenceNr: number;
  /** Tag sequence number of `sequenceNr`; undefined when unknown (its event was deleted). */
  tagSequenceNr: number | undefined;
  readonly deletedTo: number;
}

/**
 * `ReadJournal` on Cassandra. Create it with `createCassandraPersistence()`.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * for await (const e of persistence.queries.eventsByTag('pipeline-events', NoOffset, { live: true, signal: controller.signal })) {
 *   await project(e);
 *   await saveOffset(e.offset);
 * }
 * ```
 */
export class CassandraReadJournal implements ReadJournal {
  private closed = false;
  private readonly q: Record<'buckets' | 'tagRows' | 'pids' | 'tagSeqAt', string>;

  constructor(
    private readonly session: CassandraSession,
    private readonly serializers: SerializerRegistry,
    private readonly messages: MessagesReader,
  ) {
    const ks = session.keyspace;
    this.q = {
      buckets: `SELECT timebucket FROM ${ks}.tag_buckets WHERE tag_name = ? AND timebucket >= ? AND timebucket <= ?`,
      tagRows: `SELECT * FROM ${ks}.tag_views WHERE tag_name = ? AND timebucket = ? AND timestamp > ? AND timestamp <= ?`,
      pids: `SELECT persistence_id FROM ${ks}.all_persistence_ids`,
      tagSeqAt: `SELECT tag_pid_sequence_nrs FROM ${ks}.messages WHERE persistence_id = ? AND partition_nr = ? AND sequence_nr = ?`,
    };
  }

  async *eventsByPersistenceId(persistenceId: string, fromSequenceNr: number, toSequenceNr = Number.MAX_SAFE_INTEGER, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    let next = Math.max(fromSequenceNr, 1);
    for (;;) {
      this.ensureOpen();
      for await (const row of this.messages.storedRows(persistenceId, next, toSequenceNr)) {
        if (isAborted(options.signal)) return;
        const event = this.messages.toEvent(row);
        next = event.sequenceNr + 1;
        yield { ...event, offset: { kind: 'sequence', value: event.sequenceNr } };
      }
      if (options.live !== true || next > toSequenceNr) return;
      if (!(await this.sleep(this.session.settings.pollIntervalMs, options.signal))) return;
    }
  }

  async *eventsByTag(tag: string, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    const { now, eventualConsistencyDelayMs, timeBucketMs, pollIntervalMs, readConsistency } = this.session.settings;
    if (offset.kind === 'sequence') {
      throw new JournalReadError('The Cassandra read journal takes timestamp offsets, not sequence offsets', { retriable: false });
    }
    const resumed: Readonly<Record<string, number>> = offset.kind === 'timestamp' ? offset.seen : {};
    const progress = new Map<string, PidProgress>();
    let seen: Record<string, number> = { ...resumed };
    // Rows with timestamp > lower (and in bucket >= bucket) are still to be read.
    let lower = offset.kind === 'timestamp' ? types.TimeUuid.min(new Date(offset.value), 0) : types.TimeUuid.min(new Date(0), 0);
    let offsetValue = offset.kind === 'timestamp' ? offset.value : 0;
    let bucket = offset.kind === 'timestamp' ? bucketOf(offset.value, timeBucketMs) : Number.MIN_SAFE_INTEGER;
    const end = options.live === true ? Number.POSITIVE_INFINITY : now();

    const deliver = (event: PersistedEvent, tagSequenceNr: number, at: number): EventEnvelope => {
      const state = progress.get(event.persistenceId);
      if (state !== undefined) {
        state.sequenceNr = event.sequenceNr;
        state.tagSequenceNr = tagSequenceNr;
      }
      offsetValue = Math.max(offsetValue, at);
      seen = { ...seen, [event.persistenceId]: event.sequenceNr };
      return { ...event, offset: { kind: 'timestamp', value: offsetValue, seen } };
    };

    for (;;) {
      this.ensureOpen();
      if (isAborted(options.signal)) return;
      const upper = Math.min(now() - eventualConsistencyDelayMs, end);
      const upperUuid = types.TimeUuid.max(new Date(upper), 9999);
      let buckets: number[];
      try {
        buckets = await this.bucketsOf(tag, bucket, bucketOf(upper, timeBucketMs));
      } catch (error) {
        throw asReadError(`eventsByTag(${tag}) failed`, error);
      }
      for (const b of buckets) {
        if (b > bucket) lower = types.TimeUuid.min(new Date(0), 0);
        bucket = b;
        const rows = this.session.rows(this.q.tagRows, [tag, b, lower, upperUuid], readConsistency);
        for await (const row of this.guardRows(tag, rows)) {
          if (isAborted(options.signal)) return;
          lower = row['timestamp'] as types.TimeUuid;
          const persistenceId = row['persistence_id'] as string;
          const sequenceNr = toNumber(row['sequence_nr']);
          const tagSequenceNr = toNumber(row['tag_pid_sequence_nr']);
          const state = progress.get(persistenceId) ?? (await this.startProgress(persistenceId, tag, resumed[persistenceId], progress));
          if (sequenceNr <= state.sequenceNr || sequenceNr <= state.deletedTo) continue;
          if (state.tagSequenceNr !== undefined && tagSequenceNr !== state.tagSequenceNr + 1) {
            for await (const missing of this.fillGap(tag, persistenceId, state, sequenceNr, tagSequenceNr, options.signal)) {
              yield deliver(this.messages.toEvent(missing.row), missing.tagSequenceNr, timeOf(lower));
            }
          }
          const event = rowToEvent(row, this.serializers, toNumber(row['event_timestamp']));
          yield deliver(event, tagSequenceNr, timeOf(row['timestamp']));
        }
      }
      // Everything up to `upper` is read; move the cursor there.
      if (bucketOf(upper, timeBucketMs) > bucket) bucket = bucketOf(upper, timeBucketMs);
      if (bucket === bucketOf(upper, timeBucketMs) && timeOf(lower) <= upper) lower = upperUuid;
      if (upper >= end) return;
      const wait = options.live === true ? pollIntervalMs : Math.min(pollIntervalMs, end - upper);
      if (!(await this.sleep(wait, options.signal))) return;
    }
  }

  async *persistenceIds(options: QueryOptions = {}): AsyncIterable<string> {
    const delivered = new Set<string>();
    for (;;) {
      this.ensureOpen();
      try {
        for await (const row of this.session.rows(this.q.pids, [], this.session.settings.readConsistency)) {
          if (isAborted(options.signal)) return;
          const id = row['persistence_id'] as string;
          if (delivered.has(id)) continue;
          delivered.add(id);
          yield id;
        }
      } catch (error) {
        throw asReadError('persistenceIds failed', error);
      }
      if (options.live !== true) return;
      if (!(await this.sleep(this.session.settings.pollIntervalMs, options.signal))) return;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private async bucketsOf(tag: string, from: number, to: number): Promise<number[]> {
    const buckets: number[] = [];
    for await (const row of this.session.rows(this.q.buckets, [tag, Math.max(from, Number.MIN_SAFE_INTEGER), to], this.session.settings.readConsistency)) {
      buckets.push(toNumber(row['timebucket']));
    }
    return buckets;
  }

  private async *guardRows(tag: string, rows: AsyncIterable<Row>): AsyncIterable<Row> {
    try {
      yield* rows;
    } catch (error) {
      throw asReadError(`eventsByTag(${tag}) failed`, error);
    }
  }

  /** Progress of an id first met in this stream: from the offset's `seen`, else from the start. */
  private async startProgress(persistenceId: string, tag: string, resumedAt: number | undefined, progress: Map<string, PidProgress>): Promise<PidProgress> {
    const deletedTo = await this.messages.deletedTo(persistenceId).catch((error: unknown) => {
      throw asReadError(`eventsByTag(${tag}) failed`, error);
    });
    let state: PidProgress;
    if (resumedAt === undefined) {
      // Events deleted before the stream started make the first tag sequence number unknowable.
      state = { sequenceNr: 0, tagSequenceNr: deletedTo > 0 ? undefined : 0, deletedTo };
    } else {
      state = { sequenceNr: resumedAt, tagSequenceNr: await this.tagSequenceNrAt(persistenceId, resumedAt, tag), deletedTo };
    }
    progress.set(persistenceId, state);
    return state;
  }

  /** The tag sequence number of event `sequenceNr`, read from `messages`; undefined when deleted. */
  private async tagSequenceNrAt(persistenceId: string, sequenceNr: number, tag: string): Promise<number | undefined> {
    const partition = partitionOf(sequenceNr, this.session.settings.targetPartitionSize);
    for (const p of [partition, partition + 1]) {
      const result = await this.session.execute(this.q.tagSeqAt, [persistenceId, p, sequenceNr], {
        consistency: this.session.settings.readConsistency,
        idempotent: true,
      });
      const row = result.first();
      if (row !== null && row !== undefined) return toNumberMap(row['tag_pid_sequence_nrs']).get(tag);
    }
    return undefined;
  }

  /**
   * The events of `persistenceId` tagged `tag` between the last one delivered
   * and the row just read, from `messages`; re-read until complete or until
   * `gapTimeoutMs` has passed, then `ReplayGapError`.
   */
  private async *fillGap(
    tag: string,
    persistenceId: string,
    state: PidProgress,
    foundSequenceNr: number,
    foundTagSequenceNr: number,
    signal: AbortSignal | undefined,
  ): AsyncIterable<{ row: Row; tagSequenceNr: number }> {
    const { now, gapTimeoutMs, pollIntervalMs } = this.session.settings;
    const expectedTag = (state.tagSequenceNr ?? 0) + 1;
    const deadline = now() + gapTimeoutMs;
    for (;;) {
      const missing: Array<{ row: Row; tagSequenceNr: number }> = [];
      for await (const row of this.messages.storedRows(persistenceId, state.sequenceNr + 1, foundSequenceNr - 1)) {
        const tagSequenceNr = toNumberMap(row['tag_pid_sequence_nrs']).get(tag);
        if (tagSequenceNr !== undefined) missing.push({ row, tagSequenceNr });
      }
      const complete =
        missing.length === foundTagSequenceNr - expectedTag && missing.every((m, i) => m.tagSequenceNr === expectedTag + i);
      if (complete) {
        yield* missing;
        return;
      }
      if (now() >= deadline) throw new ReplayGapError(persistenceId, state.sequenceNr + 1, foundSequenceNr);
      if (!(await this.sleep(pollIntervalMs, signal))) {
        throw new ReplayGapError(persistenceId, state.sequenceNr + 1, foundSequenceNr);
      }
    }
  }

  /** Waits `ms`; false when `signal` aborted first. */
  private sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private ensureOpen(): void {
    if (this.closed) throw new JournalReadError('The Cassandra read journal is closed', { retriable: false });
  }
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
