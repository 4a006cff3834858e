/**
 * Runs one projection: reads its tag from the stored offset (live), applies
 * the handler per its guarantee and recovery strategy, saves offsets, and
 * stops when its signal aborts or the projection is paused. Every save is
 * conditional on the stored offset still being the one this run left
 * (`ProjectionOffsetMovedError` otherwise, its transaction rolled back): an
 * instance that lingers after another took its key over (a slice range
 * moved to another node, a rebuild swapped the table) cannot apply events
 * twice. A failure the
 * strategy does not absorb rejects the run (its supervisor restarts it from
 * the stored offset).
 */
import { NoOffset, supportsEventsBySlices, type EventEnvelope, type Offset, type QueryOptions, type ReadJournal } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';
import type { ProjectionId, ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { groupedWithinMs } from './grouped-within.js';
import { ProjectionHandlerError, ProjectionOffsetMovedError } from './projection-errors.js';
import { BulkNotApplicableError, type EventHandler, type GroupHandler, type Projection } from './projection.js';
import { sliceForPersistenceId, type SliceRange } from '../slices/slices.js';

/** What a running projection reports (for logs and metrics). */
export type ProjectionStatusEvent =
  | { readonly type: 'started'; readonly id: ProjectionId; readonly offset: Offset | undefined }
  | { readonly type: 'progress'; readonly id: ProjectionId; readonly offset: Offset; readonly events: number; readonly lastEventAt: number }
  | { readonly type: 'error'; readonly id: ProjectionId; readonly error: unknown; readonly attempt: number; readonly outcome: 'retry' | 'skip' | 'fail' }
  | { readonly type: 'stopped'; readonly id: ProjectionId; readonly reason: 'aborted' | 'paused' | 'failed' };

export interface ProjectionRunDependencies {
  readonly queries: ReadJournal;
  readonly store: ProjectionOffsetStore;
  /** Where the handlers write (the same database as the offset store). */
  readonly executor: SqlExecutor;
  readonly onStatus?: (event: ProjectionStatusEvent) => void;
  /** How often the paused flag is read while running, ms (default 1 000). */
  readonly pauseCheckMs?: number;
  /**
   * The journal's tables when they live in the read model's database
   * (Postgres, PGlite): a projection with a `bulk` statement catches up in
   * SQL, up to the journal's safe ordering, before it reads event by event.
   */
  readonly journal?: JournalTables;
  /** Bulk catch-up runs when the projection is at least this many orderings behind (default `BULK_MIN_BEHIND`). */
  readonly bulkMinBehind?: number;
  /**
   * Parts of a bulk range read at once, each on its own connection (default
   * `BULK_PARALLELISM`; 1 reads the range in one statement). The pool behind
   * `executor` needs this many connections free, plus one for the write.
   */
  readonly bulkParallelism?: number;
}

/** A SQL journal as the bulk catch-up reads it. */
export interface JournalTables {
  /** The quoted `event_journal` table. */
  readonly eventTable: string;
  /** The ordering up to which every event is visible or gone for good (see the Postgres read journal). */
  safeOrdering(signal?: AbortSignal): Promise<number | undefined>;
}

/** Bulk catch-up runs when the projection is at least this many orderings behind, in ranges of at most `BULK_RANGE`. */
export const BULK_MIN_BEHIND = 2_000;
const BULK_RANGE = 250_000;
/** Parts of a bulk range read at once by default: a database host has at least two cores (more parts on two cores measured no faster). */
export const BULK_PARALLELISM = 2;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Runs `projection` until `signal` aborts (resolves `'aborted'`), the
 * projection is paused (resolves `'paused'`), or a failure is not absorbed
 * by its recovery strategy (rejects with `ProjectionHandlerError` or the
 * query's error).
 */
export async function runProjection(projection: Projection, deps: ProjectionRunDependencies, signal: AbortSignal): Promise<'aborted' | 'paused'> {
  const { id } = projection;
  const emit = (event: ProjectionStatusEvent) => deps.onStatus?.(event);
  const stored = await deps.store.get(id);
  if (stored.paused) {
    emit({ type: 'stopped', id, reason: 'paused' });
    return 'paused';
  }
  emit({ type: 'started', id, offset: stored.offset });
  // Where this run left the stored offset: each save expects it there.
  const position: { offset: Offset | undefined } = { offset: stored.offset };
  const inner = new AbortController();
  const abort = () => inner.abort();
  signal.addEventListener('abort', abort, { once: true });
  const pauseCheckMs = deps.pauseCheckMs ?? 1_000;
  let lastPauseCheck = Date.now();
  let pausedSeen = false;
  const pausedNow = async (): Promise<boolean> => {
    if (Date.now() - lastPauseCheck < pauseCheckMs) return false;
    lastPauseCheck = Date.now();
    pausedSeen = (await deps.store.get(id)).paused;
    if (pausedSeen) inner.abort();
    return pausedSeen;
  };
  // A failure of the background work (the pause check, a timed offset save) ends the run with that failure.
  let backgroundFailure: { readonly error: unknown } | undefined;
  const failInBackground = (error: unknown) => {
    backgroundFailure ??= { error };
    inner.abort();
  };
  // The paused flag is also read while the live query waits for events.
  const pauseTimer = setInterval(() => void pausedNow().catch(failInBackground), pauseCheckMs);
  pauseTimer.unref?.();
  let saveTimer: NodeJS.Timeout | undefined;
  try {
    let from = stored.offset ?? NoOffset;
    if (projection.bulk !== undefined && deps.journal !== undefined && (from.kind === 'none' || from.kind === 'sequence')) {
      from = await bulkCatchUp(projection, projection.bulk, deps, deps.journal, from.kind === 'sequence' ? from.value : 0, emit, inner.signal, position);
    }
    const events = sourceOf(projection, deps.queries, from, { live: true, signal: inner.signal });
    const guarantee = projection.guarantee;
    if (guarantee.kind === 'grouped-within') {
      for await (const group of groupedWithinMs(events, guarantee.size, guarantee.withinMs, inner.signal)) {
        const last = group.at(-1) as EventEnvelope;
        await withRecovery(projection, deps, emit, inner.signal, async () => {
          await deps.executor.transaction(async (tx) => {
            await (projection.handler as GroupHandler)(group, tx);
            await deps.store.save(id, last.offset, group.length, last.timestamp, tx, position);
          });
          position.offset = last.offset;
        }, last, group.length, position);
        emit({ type: 'progress', id, offset: last.offset, events: group.length, lastEventAt: last.timestamp });
        if (await pausedNow()) break;
      }
    } else if (guarantee.kind === 'exactly-once') {
      for await (const envelope of events) {
        await withRecovery(projection, deps, emit, inner.signal, async () => {
          await deps.executor.transaction(async (tx) => {
            await (projection.handler as EventHandler)(envelope, tx);
            await deps.store.save(id, envelope.offset, 1, envelope.timestamp, tx, position);
          });
          position.offset = envelope.offset;
        }, envelope, 1, position);
        emit({ type: 'progress', id, offset: envelope.offset, events: 1, lastEventAt: envelope.timestamp });
        if (await pausedNow()) break;
      }
    } else {
      let unsaved = 0;
      let last: EventEnvelope | undefined;
      let savedAt = Date.now();
      // Saves run one after the other (the loop's and the timer's), each for what was handled when it was called.
      let saving: Promise<void> = Promise.resolve();
      const save = (): Promise<void> => {
        const upTo = last;
        const events = unsaved;
        if (upTo === undefined || events === 0) return saving;
        unsaved = 0;
        savedAt = Date.now();
        saving = saving.then(async () => {
          await deps.store.save(id, upTo.offset, events, upTo.timestamp, deps.executor, position);
          position.offset = upTo.offset;
          emit({ type: 'progress', id, offset: upTo.offset, events, lastEventAt: upTo.timestamp });
        });
        return saving;
      };
      // While no further event comes, what was handled is saved once saveAfterMs passed.
      saveTimer = setInterval(() => {
        if (unsaved > 0 && Date.now() - savedAt >= guarantee.saveAfterMs) save().catch(failInBackground);
      }, Math.max(10, Math.min(guarantee.saveAfterMs, 1_000)));
      saveTimer.unref?.();
      try {
        for await (const envelope of events) {
          await withRecovery(projection, deps, emit, inner.signal, () => (projection.handler as EventHandler)(envelope, deps.executor), envelope, 0, position);
          last = envelope;
          unsaved++;
          if (unsaved >= guarantee.saveEvery || Date.now() - savedAt >= guarantee.saveAfterMs) await save();
          if (await pausedNow()) break;
        }
      } finally {
        clearInterval(saveTimer);
        // What was handled is saved on the way out (a crash skips this: those events are handled again).
        await save();
      }
    }
  } catch (error) {
    if (!inner.signal.aborted || backgroundFailure !== undefined) {
      emit({ type: 'stopped', id, reason: 'failed' });
      throw backgroundFailure === undefined ? error : backgroundFailure.error;
    }
  } finally {
    clearInterval(pauseTimer);
    clearInterval(saveTimer);
    signal.removeEventListener('abort', abort);
    // Ends a live query still open (a failure left the loop).
    inner.abort();
  }
  if (backgroundFailure !== undefined) {
    emit({ type: 'stopped', id, reason: 'failed' });
    throw backgroundFailure.error;
  }
  const reason = pausedSeen ? 'paused' : 'aborted';
  emit({ type: 'stopped', id, reason });
  return reason;
}

/**
 * Applies the events after ordering `after` up to the journal's safe ordering
 * with the projection's bulk catch-up, range by range: the parts of a range
 * are read at once (read-only, each in its own transaction), then one
 * transaction writes what they found together with the range's offset (a
 * crash redoes at most the range in flight, never a committed one); returns
 * the offset to stream from.
 */
async function bulkCatchUp(
  projection: Projection,
  bulk: NonNullable<Projection['bulk']>,
  deps: ProjectionRunDependencies,
  journal: JournalTables,
  after: number,
  emit: (event: ProjectionStatusEvent) => void,
  signal: AbortSignal,
  position: { offset: Offset | undefined },
): Promise<Offset> {
  let done = after;
  const offset = (): Offset => (done === 0 ? NoOffset : { kind: 'sequence', value: done });
  const head = await journal.safeOrdering(signal);
  if (head === undefined || head - done < (deps.bulkMinBehind ?? BULK_MIN_BEHIND)) return offset();
  const parallelism = deps.bulkParallelism ?? BULK_PARALLELISM;
  if (!Number.isInteger(parallelism) || parallelism < 1) throw new RangeError(`bulkParallelism must be a positive integer, got ${parallelism}`);
  while (done < head && !signal.aborted) {
    const upTo = Math.min(head, done + BULK_RANGE);
    const base = { journalTable: journal.eventTable, tag: projection.tag, ...(projection.slices === undefined ? {} : { slices: projection.slices }) };
    const next: Offset = { kind: 'sequence', value: upTo };
    let events = 0;
    let lastEventAt: number | undefined;
    try {
      const parts = await allSettled(partsOf(done, upTo, parallelism).map(([from, to]) => deps.executor.transaction((tx) => bulk.read(tx, { ...base, after: from, upTo: to }))));
      for (const part of parts) {
        events += part.events;
        if (part.lastEventAt !== undefined) lastEventAt = Math.max(lastEventAt ?? part.lastEventAt, part.lastEventAt);
      }
      await deps.executor.transaction(async (tx) => {
        await bulk.write(tx, parts.map((part) => part.value));
        await deps.store.save(projection.id, next, events, lastEventAt ?? Date.now(), tx, position);
      });
      position.offset = next;
    } catch (error) {
      if (error instanceof BulkNotApplicableError) return offset(); // read the rest event by event
      throw error;
    }
    done = upTo;
    emit({ type: 'progress', id: projection.id, offset: next, events, lastEventAt: lastEventAt ?? Date.now() });
  }
  return offset();
}

/** Orderings (after, upTo] in at most `parallelism` parts of equal span. */
function partsOf(after: number, upTo: number, parallelism: number): [number, number][] {
  const span = Math.ceil((upTo - after) / parallelism);
  const parts: [number, number][] = [];
  for (let from = after; from < upTo; from += span) parts.push([from, Math.min(upTo, from + span)]);
  return parts;
}

/** Every promise's value once all have settled; else the first failure (a `BulkNotApplicableError` before any other), never leaving one running. */
async function allSettled<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.all(promises.map((p) => p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))));
  const failures = settled.flatMap((s) => (s.ok ? [] : [s.error]));
  if (failures.length > 0) throw failures.find((e) => e instanceof BulkNotApplicableError) ?? failures[0];
  return settled.map((s) => (s as { value: T }).value);
}

/**
 * The projection's events after `offset`: with a slice range and an entity type
 * on a store that offers `eventsBySlices`, only those slices are read (the
 * events carrying the tag kept); otherwise the whole tag, filtered by slice.
 * Both queries of a store share one offset space (the global ordering on
 * Postgres, PGlite and in memory), so a stored offset stays valid across them.
 * On Cassandra both give timestamp offsets, but over different tag rows, and
 * events stored before the store wrote slice rows have none: a sliced
 * projection that switches source there is rebuilt (docs/adr/0010).
 */
function sourceOf(projection: Projection, queries: ReadJournal, offset: Offset, options: QueryOptions): AsyncIterable<EventEnvelope> {
  const { slices, entityType, tag } = projection;
  if (slices !== undefined && entityType !== undefined && supportsEventsBySlices(queries)) {
    return withTag(queries.eventsBySlices(entityType, slices.min, slices.max, offset, options), tag);
  }
  const all = queries.eventsByTag(tag, offset, options);
  return slices === undefined ? all : inSlices(all, slices);
}

/** The events carrying `tag`. */
async function* withTag(events: AsyncIterable<EventEnvelope>, tag: string): AsyncGenerator<EventEnvelope> {
  for await (const envelope of events) if (envelope.tags.includes(tag)) yield envelope;
}

/** The events of persistence ids in `range`. */
async function* inSlices(events: AsyncIterable<EventEnvelope>, range: SliceRange): AsyncGenerator<EventEnvelope> {
  for await (const envelope of events) {
    const slice = sliceForPersistenceId(envelope.persistenceId);
    if (slice >= range.min && slice <= range.max) yield envelope;
  }
}

/**
 * Applies `work` under the projection's recovery strategy. A skipped event
 * still moves the offset (exactly-once strategies save it on its own), so it
 * is not met again.
 */
async function withRecovery(
  projection: Projection,
  deps: ProjectionRunDependencies,
  emit: (event: ProjectionStatusEvent) => void,
  signal: AbortSignal,
  work: () => Promise<void>,
  last: EventEnvelope,
  events: number,
  position: { offset: Offset | undefined },
): Promise<void> {
  const strategy = projection.recovery;
  const retries = strategy.type === 'retry-and-fail' || strategy.type === 'retry-and-skip' ? strategy.retries : 0;
  for (let attempt = 1; ; attempt++) {
    try {
      await work();
      return;
    } catch (error) {
      // Another instance or management moved the offset: no recovery strategy applies, the run ends and restarts from it.
      if (signal.aborted || error instanceof ProjectionOffsetMovedError) throw error;
      const skip = strategy.type === 'skip' || (strategy.type === 'retry-and-skip' && attempt > retries);
      const retry = !skip && attempt <= retries;
      const outcome = retry ? 'retry' : skip ? 'skip' : 'fail';
      emit({ type: 'error', id: projection.id, error, attempt, outcome });
      const message = error instanceof Error ? error.message : String(error);
      if (retry) {
        await sleep((strategy as { delayMs: number }).delayMs, signal);
        continue;
      }
      // A skipped event's offset is saved first: a save clears the last error, and this one must stay visible.
      if (skip && events > 0) {
        await deps.store.save(projection.id, last.offset, events, last.timestamp, deps.executor, position);
        position.offset = last.offset;
      }
      await deps.store.setError(projection.id, `${outcome === 'skip' ? 'skipped' : 'failed'} at ${describe(last)} after ${attempt} attempt(s): ${message}`);
      if (skip) return;
      throw new ProjectionHandlerError(projection.id.name, `the handler failed at ${describe(last)} after ${attempt} attempt(s): ${message}`, { cause: error, attempts: attempt });
    }
  }
}

function describe(envelope: EventEnvelope): string {
  return `${envelope.persistenceId}#${envelope.sequenceNr}`;
}
