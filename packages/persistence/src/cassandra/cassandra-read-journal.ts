/**
 * The Cassandra read journal. `eventsByTag` reads `tag_views` bucket by
 * bucket and checks each persistence id's tag sequence numbers: a hole is
 * filled from `messages` (the source of truth), waited for up to
 * `gapTimeoutMs`, and otherwise reported as `ReplayGapError`; events are never
 * skipped.
 *
 * Tag rows are timestamped by their writer's clock, and a row can become
 * readable after a reader has passed its timestamp (a slow write, a writer
 * whose clock is behind). A live stream therefore reads with two cursors
 * (Pekko r2dbc's backtracking): the forward read stays
 * `eventualConsistencyDelayMs` behind now, and a second read re-reads the
 * rows `eventualConsistencyDelayMs + maxClockSkewMs` further behind, which
 * delivers what the first one missed; duplicates are dropped per id by
 * sequence number. A current query reads once what was stored when it
 * started. Offsets are a time watermark plus the ids delivered within that
 * window (`tag-offset.ts`): bounded, and O(1) per event.
 *
 * `eventsBySlices` is the same stream over the implicit slice-group tags
 * (`slice-tags.ts`, docs/adr/0010): the rows of the groups covering the range
 * merged in timestamp order, the ids of other slices skipped.
 *
 * (Under 500 lines: the two cursors, the resume scan and gap filling share
 * the per-id progress and read best in one place.)
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
  type SliceQueries,
} from '@dataflow/core';
import { asReadError } from './cassandra-settings.js';
import type { MessagesReader } from './messages-reader.js';
import type { CassandraSession, Row } from './cassandra-session.js';
import { bucketOf, partitionOf, rowToEvent, timeOf, toNumber, toNumberMap } from './event-row.js';
import { sliceSelection, sliceTagOf } from './slice-tags.js';
import { cursorAt, mergedPages, MIN_UUID, prefetched, type Cursor } from './tag-cursor.js';
import { TagOffsetTracker } from './tag-offset.js';

/** Where one persistence id stands in a tag stream. */
interface PidProgress {
  sequenceNr: number;
  /** Tag sequence number of `sequenceNr`; undefined when unknown (its event was deleted). */
  tagSequenceNr: number | undefined;
  readonly deletedTo: number;
}

/** The last row of an id seen by the scan before a resumed offset's value. */
interface Learned {
  readonly sequenceNr: number;
  readonly tagSequenceNr: number;
}

/** How many re-read windows before a resumed offset's value `learnProgress` reads. */
const RESUME_SCAN_WINDOWS = 3;

/** The state of one `eventsByTag` or `eventsBySlices` stream. */
interface TagStream {
  /** The query, for error messages: `eventsByTag(t)`. */
  readonly name: string;
  /** The tags read: one, or the slice-group tags of a range (their rows merged in timestamp order). */
  readonly tags: readonly string[];
  /** The tag of an id's rows in this stream (whose tag sequence numbers it follows). */
  readonly tagOf: (persistenceId: string) => string;
  /** Which ids' rows are delivered (the others are skipped before any look-up); undefined: all. */
  readonly keep: ((persistenceId: string) => boolean) | undefined;
  readonly tracker: TagOffsetTracker;
  readonly progress: Map<string, PidProgress>;
  /** The offset's `seen`, by persistence id. */
  readonly resumedSeen: ReadonlyMap<string, number>;
  readonly resumed: boolean;
  /** Ids not in `resumedSeen` with rows just before the resumed offset's value. */
  readonly learned: ReadonlyMap<string, Learned>;
  readonly signal: AbortSignal | undefined;
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
export class CassandraReadJournal implements ReadJournal, SliceQueries {
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
      // Only the columns an envelope is made of: fewer values for the driver to decode per row than `SELECT *`.
      tagRows:
        'SELECT timestamp, persistence_id, sequence_nr, tag_pid_sequence_nr, event_timestamp, writer_uuid, ser_id, event_manifest, event, tags ' +
        `FROM ${ks}.tag_views WHERE tag_name = ? AND timebucket = ? AND timestamp > ? AND timestamp <= ?`,
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

  eventsByTag(tag: string, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    return this.tagStream({ name: `eventsByTag(${tag})`, tags: [tag], tagOf: () => tag, keep: undefined }, offset, options);
  }

  /**
   * Reads the implicit slice-group tags covering the range (`slice-tags.ts`,
   * docs/adr/0010) as one tag stream: rows merged in timestamp order, the
   * ids outside the range skipped. Offsets are `eventsByTag`'s.
   */
  async *eventsBySlices(entityType: string, minSlice: number, maxSlice: number, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    const { tags, keep } = sliceSelection(entityType, minSlice, maxSlice);
    const name = `eventsBySlices(${entityType}, ${minSlice}, ${maxSlice})`;
    yield* this.tagStream({ name, tags, tagOf: sliceTagOf, keep }, offset, options);
  }

  private async *tagStream(
    query: Pick<TagStream, 'name' | 'tags' | 'tagOf' | 'keep'>,
    offset: Offset,
    options: QueryOptions,
  ): AsyncIterable<EventEnvelope> {
    const { now, eventualConsistencyDelayMs: delayMs, maxClockSkewMs, maxOffsetSeen } = this.session.settings;
    if (offset.kind === 'sequence') {
      throw new JournalReadError('The Cassandra read journal takes timestamp offsets, not sequence offsets', { retriable: false });
    }
    const live = options.live === true;
    const startedAt = now();
    // A row timestamped t by a writer whose clock is behind by up to maxClockSkewMs, written within
    // delayMs (or re-stamped), is readable by startedAt if t <= startedAt - windowMs.
    const windowMs = delayMs + maxClockSkewMs;
    const resumed = offset.kind === 'timestamp' ? offset : undefined;
    const tracker = new TagOffsetTracker({ windowMs, maxSeen: maxOffsetSeen, ...(live ? {} : { cap: startedAt - windowMs }) }, resumed);
    const resumedSeen = new Map(resumed === undefined ? [] : Object.entries(resumed.seen));
    const start = tracker.start;
    this.ensureOpen();
    const stream: TagStream = {
      ...query,
      tracker,
      progress: new Map(),
      resumedSeen,
      resumed: resumed !== undefined,
      learned: start === undefined ? new Map() : await this.learnProgress(query, start, windowMs, resumedSeen),
      signal: options.signal,
    };
    const forward = cursorAt(tracker.start, this.session.settings.timeBucketMs);
    this.ensureOpen();
    // A current query reads once everything stored before it started: its rows are all readable now.
    const batches = live ? this.liveBatches(stream, forward) : this.scan(stream, forward, startedAt);
    for await (const batch of batches) {
      for (const envelope of batch) {
        if (isAborted(options.signal)) return;
        yield envelope;
      }
    }
  }

  /** The batches of a live stream: forward reads and re-reads of the window, every `pollIntervalMs`. */
  private async *liveBatches(stream: TagStream, forward: Cursor): AsyncIterable<EventEnvelope[]> {
    const { now, eventualConsistencyDelayMs: delayMs, maxClockSkewMs, pollIntervalMs, timeBucketMs } = this.session.settings;
    const { tracker, signal } = stream;
    let backtrack: Cursor | undefined;
    for (;;) {
      this.ensureOpen();
      if (isAborted(signal)) return;
      const t = now();
      // Rows timestamped before `surely` are readable by now (and were at every earlier read from here on).
      const surely = t - 2 * delayMs - maxClockSkewMs;
      if (backtrack === undefined) tracker.limit(surely);
      yield* this.scan(stream, forward, t - delayMs);
      if (isAborted(signal)) return;
      if (backtrack === undefined) {
        // The first read reached back to here while these rows were surely readable: the re-read starts here.
        backtrack = cursorAt(Math.max(tracker.start ?? Number.NEGATIVE_INFINITY, surely), timeBucketMs);
      } else {
        // The re-read of the recent window: rows that became readable after the forward read passed them.
        yield* this.scan(stream, backtrack, surely);
        tracker.limit(surely);
      }
      if (!(await this.sleep(Math.max(0, pollIntervalMs - (now() - t)), signal))) return;
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

  private async *guardRows<T>(name: string, rows: AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* rows;
    } catch (error) {
      throw asReadError(`${name} failed`, error);
    }
  }

  /**
   * Reads the rows of `stream.tags` after `cursor` up to `upper` (epoch ms),
   * delivers those not delivered yet (filling holes from `messages`), and
   * moves the cursor to `upper`. Yields the events of a page at a time (one
   * async step per page, not per event).
   */
  private async *scan(stream: TagStream, cursor: Cursor, upper: number): AsyncIterable<EventEnvelope[]> {
    const { name, progress, signal, keep, tagOf } = stream;
    for await (const read of this.streamPages(stream, cursor, upper)) {
      const page = keep === undefined ? read : read.filter((row) => keep(row['persistence_id'] as string));
      await this.startProgress(stream, page);
      let batch: EventEnvelope[] = [];
      for (const row of page) {
        if (isAborted(signal)) return;
        const persistenceId = row['persistence_id'] as string;
        const sequenceNr = toNumber(row['sequence_nr']);
        const state = progress.get(persistenceId);
        if (state === undefined) throw new JournalReadError(`${name}: no progress for ${persistenceId}`, { retriable: false });
        if (sequenceNr <= state.sequenceNr || sequenceNr <= state.deletedTo) continue;
        const tagSequenceNr = toNumber(row['tag_pid_sequence_nr']);
        const at = timeOf(row['timestamp']);
        if (state.tagSequenceNr !== undefined && tagSequenceNr !== state.tagSequenceNr + 1) {
          // What is ready goes out before a hole that may take up to gapTimeoutMs to fill.
          if (batch.length > 0) yield batch;
          batch = [];
          for await (const missing of this.fillGap(tagOf(persistenceId), persistenceId, state, sequenceNr, tagSequenceNr, signal)) {
            batch.push(this.deliver(stream, state, this.messages.toEvent(missing.row), missing.tagSequenceNr, at));
          }
        }
        batch.push(this.deliver(stream, state, rowToEvent(row, this.serializers, toNumber(row['event_timestamp'])), tagSequenceNr, at));
      }
      if (batch.length > 0) yield batch;
    }
  }

  /**
   * The rows of a stream's tags after `cursor` up to `upper`, a page at a
   * time; several tags (a slice range over several groups) are read side by
   * side and merged in timestamp order, so the offset tracker sees one
   * ordered stream. Then moves the cursor to `upper`.
   */
  private async *streamPages(stream: TagStream, cursor: Cursor, upper: number): AsyncIterable<Row[]> {
    const [only] = stream.tags;
    if (stream.tags.length === 1 && only !== undefined) {
      yield* this.tagPages(stream.name, only, cursor, upper);
      return;
    }
    const cursors = stream.tags.map(() => ({ ...cursor }));
    yield* mergedPages(stream.tags.map((tag, i) => this.tagPages(stream.name, tag, cursors[i] ?? { ...cursor }, upper)));
    // Every tag was read up to `upper`: their cursors all stand there.
    Object.assign(cursor, cursors[0]);
  }

  /** The rows of `tag` after `cursor` up to `upper` (epoch ms), a page at a time; then moves the cursor to `upper`. */
  private async *tagPages(name: string, tag: string, cursor: Cursor, upper: number): AsyncIterable<Row[]> {
    if (upper < cursor.lowerMs) return;
    const { timeBucketMs, readConsistency } = this.session.settings;
    const upperUuid = types.TimeUuid.max(new Date(upper), 9999);
    const lastBucket = bucketOf(upper, timeBucketMs);
    let buckets = [lastBucket];
    // Within one bucket (the usual case of a live stream) there is nothing to look up.
    if (cursor.bucket !== lastBucket) {
      try {
        buckets = await this.bucketsOf(tag, cursor.bucket, lastBucket);
      } catch (error) {
        throw asReadError(`${name} failed`, error);
      }
    }
    for (const bucket of buckets) {
      if (bucket > cursor.bucket) {
        cursor.bucket = bucket;
        cursor.lower = MIN_UUID;
      }
      yield* this.guardRows(name, prefetched(this.session.pages(this.q.tagRows, [tag, bucket, cursor.lower, upperUuid], readConsistency)));
    }
    if (lastBucket > cursor.bucket || (lastBucket === cursor.bucket && upper > cursor.lowerMs)) {
      cursor.bucket = lastBucket;
      cursor.lower = upperUuid;
      cursor.lowerMs = upper;
    }
  }

  /**
   * Where the ids of the rows just before a resumed offset's `value` stand:
   * those rows were delivered, so an id that `seen` does not name goes on
   * from its last one there, and a hole right after it is found (a tag row
   * that was lost and not yet repaired, or stamped before its predecessor).
   * Reads `RESUME_SCAN_WINDOWS` re-read windows back.
   */
  private async learnProgress(
    query: Pick<TagStream, 'name' | 'tags' | 'keep'>,
    value: number,
    windowMs: number,
    seen: ReadonlyMap<string, number>,
  ): Promise<Map<string, Learned>> {
    const learned = new Map<string, Learned>();
    const { name, tags, keep } = query;
    // Per tag, in any order: only each id's last row counts (an id has its rows in one tag of the stream).
    for (const tag of tags) {
      const cursor = cursorAt(value - RESUME_SCAN_WINDOWS * windowMs, this.session.settings.timeBucketMs);
      for await (const page of this.tagPages(name, tag, cursor, value - 1)) this.learnFrom(page, seen, keep, learned);
    }
    return learned;
  }

  private learnFrom(page: readonly Row[], seen: ReadonlyMap<string, number>, keep: TagStream['keep'], learned: Map<string, Learned>): void {
    for (const row of page) {
      const persistenceId = row['persistence_id'] as string;
      if (seen.has(persistenceId) || (keep !== undefined && !keep(persistenceId))) continue;
      const sequenceNr = toNumber(row['sequence_nr']);
      if (sequenceNr > (learned.get(persistenceId)?.sequenceNr ?? 0)) {
        learned.set(persistenceId, { sequenceNr, tagSequenceNr: toNumber(row['tag_pid_sequence_nr']) });
      }
    }
  }

  private deliver(stream: TagStream, state: PidProgress, event: PersistedEvent, tagSequenceNr: number, at: number): EventEnvelope {
    state.sequenceNr = event.sequenceNr;
    state.tagSequenceNr = tagSequenceNr;
    // The event is this stream's own fresh object: it becomes the envelope (no copy per event).
    const envelope = event as PersistedEvent & { offset?: Offset };
    envelope.offset = stream.tracker.delivered(event.persistenceId, event.sequenceNr, at);
    return envelope as EventEnvelope;
  }

  /**
   * Progress of the ids of `page` first met in this stream, looked up for the
   * whole page at once: from the start of the id (a fresh stream), from the
   * offset's `seen`, or, for an id the offset does not name (all its rows
   * before the offset's time were delivered), from its last row just before
   * that time (`learnProgress`), else from its first row met.
   */
  private async startProgress(stream: TagStream, page: readonly Row[]): Promise<void> {
    const { progress, resumedSeen, tagOf, name } = stream;
    const unknown = new Set<string>();
    for (const row of page) {
      const persistenceId = row['persistence_id'] as string;
      if (!progress.has(persistenceId)) unknown.add(persistenceId);
    }
    if (unknown.size === 0) return;
    const ids = [...unknown];
    const [deleted, tagSequenceNrs] = await Promise.all([
      this.messages.deletedToOf(ids),
      Promise.all(
        ids.map(async (id) => {
          const at = resumedSeen.get(id);
          return at === undefined ? undefined : this.tagSequenceNrAt(id, at, tagOf(id));
        }),
      ),
    ]).catch((error: unknown) => {
      throw asReadError(`${name} failed`, error);
    });
    ids.forEach((id, i) => {
      const deletedTo = deleted.get(id) ?? 0;
      const at = resumedSeen.get(id);
      if (at !== undefined) {
        progress.set(id, { sequenceNr: at, tagSequenceNr: tagSequenceNrs[i], deletedTo });
      } else if (stream.resumed) {
        const known = stream.learned.get(id);
        progress.set(id, { sequenceNr: known?.sequenceNr ?? 0, tagSequenceNr: known?.tagSequenceNr, deletedTo });
      } else {
        // Events deleted before the stream started make the first tag sequence number unknowable.
        progress.set(id, { sequenceNr: 0, tagSequenceNr: deletedTo > 0 ? undefined : 0, deletedTo });
      }
    });
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
