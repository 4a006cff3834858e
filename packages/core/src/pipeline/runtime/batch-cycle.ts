/**
 * The batch cycle of one connector generation as a pure state machine:
 * `stepCycle(cycle, event, now) → { cycle, effects }`. The actor performs the
 * effects (poll, prepare, write, checkpoint, ack, timers) and feeds their
 * outcomes back as events; everything about order and overlap is decided
 * here and tested without actors (`batch-cycle.unit.test.ts`).
 *
 * Two lanes:
 * - the front lane takes one batch at a time from the source (or an ingest,
 *   a tick, a flush) through preparation and delivery (dead letters, then the
 *   sink): `idle → polling → preparing → ready → dead-lettering / writing`,
 *   and puts it with the `delivered` batches;
 * - the back lane appends the checkpoint of every delivered batch in one
 *   journal write: `free → checkpointing → free`.
 *
 * The front lane goes on while a checkpoint is written: the next poll and its
 * transforms always overlap it. Its sink write overlaps it too when the sink
 * has `pipelinedWrites` (it is idempotent or truncates on open), up to
 * `maxBatchesPerCheckpoint` delivered batches, which the next checkpoint then
 * records together (group commit); otherwise a batch waits in `ready` until
 * every batch before it is checkpointed. The source is acknowledged only
 * after a checkpoint, with the newest offset it covers. Empty polls are ticks for
 * stateful stages; the end of a finite source and a stop (`drain`) flush them
 * as one more batch, checkpointed like any other.
 */
import type { DataRecord } from '../../connector/data-record.js';
import type { SinkWriteResult } from '../../connector/sink.js';
import type { SourceBatch, SourceOffset, SourceRecord } from '../../connector/source.js';
import { classifyFailure } from '../model/classify-failure.js';
import { retriesExhausted } from '../model/pipeline-decider.js';
import type {
  BatchCycle,
  BatchInFlight,
  BatchKind,
  CycleConfig,
  CycleEffect,
  CycleEvent,
  CycleStart,
  CycleStep,
  PreparedBatch,
} from './batch-cycle-types.js';
import { refuseAtSink, type PreparedRecords } from './batch-preparation.js';
import { PipelineUnavailableError, sourceBatchId, StageFailedError } from './pipeline-protocol.js';

export type * from './batch-cycle-types.js';

/** A new generation, opening its connectors. */
export function openCycle(config: CycleConfig, start: CycleStart): BatchCycle {
  return {
    config,
    mode: 'opening',
    paused: start.paused ?? false,
    front: { stage: 'idle' },
    back: { stage: 'free' },
    delivered: [],
    queue: start.queue ?? [],
    recorded: start.recorded,
    committedStates: start.committedStates,
    offset: start.offset,
    position: start.position,
    sourceDone: false,
    flushed: false,
    retry: start.retry,
  };
}

/** The batches a generation holds (to answer their ingests when it closes). */
export function batchesInFlight(cycle: BatchCycle): BatchInFlight[] {
  const batches: BatchInFlight[] = [];
  if (cycle.back.stage === 'checkpointing') batches.push(...cycle.back.batches);
  batches.push(...cycle.delivered);
  if ('batch' in cycle.front) batches.push(cycle.front.batch);
  return batches;
}

/**
 * One transition. Events that do not belong to the current phase (a late
 * answer of a batch the cycle gave up) leave the cycle unchanged.
 */
export function stepCycle(cycle: BatchCycle, event: CycleEvent, now: number): CycleStep {
  const effects: CycleEffect[] = [];
  const next = transition(cycle, event, now, effects);
  return { cycle: next === cycle && effects.length === 0 ? cycle : pump(next, now, effects), effects };
}

function transition(c: BatchCycle, event: CycleEvent, now: number, effects: CycleEffect[]): BatchCycle {
  if (c.mode === 'closed') return c;
  switch (event.type) {
    case 'opened':
      return c.mode === 'opening' ? { ...c, mode: 'open' } : c;
    case 'ingest':
      return { ...c, queue: [...c.queue, event.ingest] };
    case 'pause':
      return { ...c, paused: true };
    case 'resume':
      return { ...c, paused: false };
    case 'drain': {
      if (c.mode === 'draining') return c;
      // Work without side effects yet is dropped (the source re-reads it); what is being delivered completes.
      // A batch being polled or prepared is dropped when its answer comes (see `polled`, `prepared`).
      const front = c.front;
      if (front.stage === 'ready' && front.batch.kind !== 'flush') {
        effects.push({ type: 'cancel-timeout', batchId: front.batch.batchId }, { type: 'abandoned', batch: front.batch });
        return { ...c, mode: 'draining', front: { stage: 'idle' } };
      }
      return { ...c, mode: 'draining' };
    }
    case 'polled':
      return polled(c, event.batch, now, effects);
    case 'prepared':
      return prepared(c, event.batchId, event.result, effects);
    case 'dead-lettered': {
      const front = c.front;
      if (front.stage !== 'dead-lettering' || front.batch.batchId !== event.batchId) return c;
      if (front.then === 'deliver') return delivered(c, front.batch);
      return write(c, front.batch, effects);
    }
    case 'written':
      return written(c, event.batchId, event.result, effects);
    case 'write-failed':
      return writeFailed(c, event.batchId, event.error, effects);
    case 'checkpointed': {
      const back = c.back;
      const newest = back.stage === 'checkpointing' ? back.batches[back.batches.length - 1] : undefined;
      if (back.stage !== 'checkpointing' || newest?.batchId !== event.batchId) return c;
      for (const batch of back.batches) {
        effects.push({ type: 'cancel-timeout', batchId: batch.batchId }, { type: 'completed', batch, duplicate: event.duplicate });
      }
      const lastRead = back.batches.filter((b) => b.kind === 'source').pop();
      if (lastRead !== undefined) effects.push({ type: 'ack', offset: lastRead.offset });
      const retried = c.retry !== null && back.batches.some((b) => b.batchId === c.retry?.batchId);
      return {
        ...c,
        back: { stage: 'free' },
        recorded: event.recorded,
        committedStates: newest.transformStates,
        retry: retried ? null : c.retry,
      };
    }
    case 'acked':
      return c;
    case 'failed':
      return fail(c, event.batchId, event.error, effects);
    case 'timeout': {
      const held = batchesInFlight(c).find((b) => b.batchId === event.batchId);
      if (held === undefined) return c;
      const timeoutMs = c.config.definition.batchTimeoutMs;
      const error = new PipelineUnavailableError(c.config.pipelineId, `batch ${held.batchId} timed out after ${timeoutMs} ms`, { retriable: true });
      return fail(c, held.batchId, error, effects, timeoutMs);
    }
  }
}

function fail(c: BatchCycle, batchId: string | undefined, error: unknown, effects: CycleEffect[], timedOutAfterMs?: number): BatchCycle {
  for (const batch of batchesInFlight(c)) effects.push({ type: 'cancel-timeout', batchId: batch.batchId }, { type: 'abandoned', batch });
  effects.push(timedOutAfterMs === undefined ? { type: 'fail', batchId, error } : { type: 'fail', batchId, error, timedOutAfterMs });
  return { ...c, mode: 'closed', front: { stage: 'idle' }, back: { stage: 'free' } };
}

function polled(c: BatchCycle, batch: SourceBatch, now: number, effects: CycleEffect[]): BatchCycle {
  if (c.front.stage !== 'polling') return c;
  if (c.mode === 'draining') return { ...c, front: { stage: 'idle' } };
  const sourceDone = c.sourceDone || batch.done;
  if (batch.records.length === 0) {
    if (!c.config.stateful || batch.done) return { ...c, sourceDone, front: { stage: 'idle' } };
    // An empty poll is a tick: processing-time windows may close.
    return take(c, { kind: 'tick', records: [], offset: c.offset }, now, effects, sourceDone);
  }
  return take(c, { kind: 'source', records: batch.records, offset: batch.offset }, now, effects, sourceDone);
}

/** Starts preparing a batch in the front lane. */
function take(
  c: BatchCycle,
  what: { kind: BatchKind; records: readonly SourceRecord[]; offset: SourceOffset; batchId?: string },
  now: number,
  effects: CycleEffect[],
  sourceDone = c.sourceDone,
): BatchCycle {
  const ahead = (c.back.stage === 'checkpointing' ? c.back.batches.length : 0) + c.delivered.length;
  const batchId = what.batchId ?? sourceBatchId(c.config.pipelineId, c.recorded + ahead + 1);
  const batch: BatchInFlight = {
    batchId,
    kind: what.kind,
    input: what.records.length,
    offset: what.offset,
    startedAt: now,
    attempt: c.retry?.batchId === batchId ? c.retry.attempt + 1 : 1,
  };
  const states = newestStates(c);
  effects.push({ type: 'arm-timeout', batchId, delayMs: c.config.definition.batchTimeoutMs });
  effects.push(what.kind === 'flush' ? { type: 'prepare-flush', batch, states } : { type: 'prepare', batch, records: what.records, states });
  return { ...c, sourceDone, offset: what.offset, front: { stage: 'preparing', batch } };
}

function prepared(c: BatchCycle, batchId: string, result: PreparedRecords, effects: CycleEffect[]): BatchCycle {
  const front = c.front;
  if (front.stage !== 'preparing' || front.batch.batchId !== batchId) return c;
  const batch = front.batch;
  const empty = result.output.length === 0 && result.letters.length === 0 && result.failed === 0;
  const droppedByStop = c.mode === 'draining' && batch.kind !== 'flush';
  if (droppedByStop || ((batch.kind === 'tick' || batch.kind === 'flush') && empty)) {
    // Nothing to record: an idle tick, an empty flush, or a batch a stop overtook (the source re-reads it).
    effects.push({ type: 'cancel-timeout', batchId });
    if (droppedByStop) effects.push({ type: 'abandoned', batch });
    return { ...c, front: { stage: 'idle' } };
  }
  if (result.letters.length > 0 && !c.config.hasDeadLetterTarget) {
    return fail(c, batchId, new StageFailedError('deadLetter', 'records were dead-lettered but the pipeline has no deadLetter target'), effects);
  }
  const ready: PreparedBatch = {
    ...batch,
    output: result.output,
    letters: result.letters,
    failed: result.failed,
    failedByStage: result.failedByStage ?? {},
    deadLettered: result.letters.length,
    transformStates: result.transformStates,
    position: null,
  };
  return { ...c, front: { stage: 'ready', batch: ready } };
}

/** Dead letters first (so none is lost on a crash), then the sink. */
function deliver(c: BatchCycle, batch: PreparedBatch, effects: CycleEffect[]): BatchCycle {
  if (batch.letters.length > 0) {
    effects.push({ type: 'send-dead-letters', batchId: batch.batchId, letters: batch.letters });
    return { ...c, front: { stage: 'dead-lettering', batch, then: 'write' } };
  }
  return write(c, batch, effects);
}

/** The chain states the next batch continues from: those of the newest batch taken before it. */
function newestStates(c: BatchCycle): BatchCycle['committedStates'] {
  const newest = c.delivered[c.delivered.length - 1] ?? (c.back.stage === 'checkpointing' ? c.back.batches[c.back.batches.length - 1] : undefined);
  return newest?.transformStates ?? c.committedStates;
}

/** The batch is written: its records are no longer needed, only what its checkpoint records. */
function delivered(c: BatchCycle, batch: PreparedBatch): BatchCycle {
  return { ...c, front: { stage: 'idle' }, delivered: [...c.delivered, { ...batch, output: [], letters: [] }] };
}

function write(c: BatchCycle, batch: PreparedBatch, effects: CycleEffect[]): BatchCycle {
  if (batch.output.length === 0) return delivered(c, { ...batch, position: c.position });
  effects.push({ type: 'write', batchId: batch.batchId, records: batch.output, sourceOffset: batch.offset });
  return { ...c, front: { stage: 'writing', batch } };
}

function written(c: BatchCycle, batchId: string, result: SinkWriteResult, effects: CycleEffect[]): BatchCycle {
  const front = c.front;
  if (front.stage !== 'writing' || front.batch.batchId !== batchId) return c;
  const position = result.position ?? null;
  const batch: PreparedBatch = { ...front.batch, position };
  const rejected = result.rejected ?? [];
  const refused: { record: DataRecord; failure: { message: string; retriable: boolean } }[] = [];
  for (const r of rejected) {
    const record = batch.output[r.index];
    if (record !== undefined) refused.push({ record, failure: { message: r.reason, retriable: false } });
  }
  const next = { ...c, position };
  if (refused.length === 0) return delivered(next, batch);
  return refuse(next, batch, refused, effects);
}

function writeFailed(c: BatchCycle, batchId: string, error: unknown, effects: CycleEffect[]): BatchCycle {
  const front = c.front;
  if (front.stage !== 'writing' || front.batch.batchId !== batchId) return c;
  const failure = classifyFailure(error);
  const exhausted = !failure.retriable || retriesExhausted(c.config.definition.retry, front.batch.attempt);
  if (!exhausted || c.config.definition.sink.onError === 'fail') return fail(c, batchId, error, effects);
  // The sink gave up on the whole batch: its error policy takes the records.
  const batch: PreparedBatch = { ...front.batch, output: [], position: c.position };
  return refuse(c, batch, front.batch.output.map((record) => ({ record, failure })), effects);
}

/** The sink's error policy over refused records; their letters go out before the checkpoint. */
function refuse(
  c: BatchCycle,
  batch: PreparedBatch,
  refused: readonly { record: DataRecord; failure: { message: string; retriable: boolean } }[],
  effects: CycleEffect[],
): BatchCycle {
  let refusal;
  try {
    refusal = refuseAtSink(c.config.definition, refused, { pipelineId: c.config.pipelineId, batchId: batch.batchId, now: batch.startedAt, attempt: batch.attempt });
  } catch (error) {
    return fail(c, batch.batchId, error, effects);
  }
  const counted: PreparedBatch = {
    ...batch,
    failed: batch.failed + refusal.failed,
    failedByStage: refusal.failed === 0 ? batch.failedByStage : { ...batch.failedByStage, sink: (batch.failedByStage.sink ?? 0) + refusal.failed },
    deadLettered: batch.deadLettered + refusal.letters.length,
    letters: refusal.letters,
  };
  if (refusal.letters.length === 0) return delivered(c, counted);
  if (!c.config.hasDeadLetterTarget) {
    return fail(c, batch.batchId, new StageFailedError('deadLetter', 'records were dead-lettered but the pipeline has no deadLetter target'), effects);
  }
  effects.push({ type: 'send-dead-letters', batchId: batch.batchId, letters: refusal.letters });
  return { ...c, front: { stage: 'dead-lettering', batch: counted, then: 'deliver' } };
}

/** Moves work forward after every transition: checkpoint, deliver, take the next batch, or finish. */
function pump(start: BatchCycle, now: number, effects: CycleEffect[]): BatchCycle {
  let c = start;
  if (c.mode === 'opening' || c.mode === 'closed') return c;
  for (;;) {
    if (c.back.stage === 'free' && c.delivered.length > 0) {
      effects.push({ type: 'checkpoint', batches: c.delivered });
      c = { ...c, back: { stage: 'checkpointing', batches: c.delivered }, delivered: [] };
    }
    if (c.front.stage !== 'ready' || !mayDeliver(c)) break;
    c = deliver(c, c.front.batch, effects);
    if (c.front.stage !== 'idle') break;
  }
  if (c.front.stage !== 'idle') return c;
  if (c.mode === 'open' && !c.paused) {
    const [ingest, ...rest] = c.queue;
    if (ingest !== undefined) {
      return take({ ...c, queue: rest }, { kind: 'ingest', records: ingest.records.map((value) => ({ ok: true as const, value })), offset: c.offset, batchId: ingest.batchId }, now, effects);
    }
    if (!c.sourceDone) {
      const { size, maxWaitMs } = c.config.definition.batch;
      effects.push({ type: 'poll', maxRecords: size, maxWaitMs });
      return { ...c, front: { stage: 'polling' } };
    }
  }
  const finishing = c.mode === 'draining' || (c.mode === 'open' && c.sourceDone && !c.paused);
  if (!finishing || c.back.stage !== 'free' || c.delivered.length > 0) return c;
  if (c.config.stateful && !c.flushed) {
    return take({ ...c, flushed: true }, { kind: 'flush', records: [], offset: c.offset }, now, effects);
  }
  effects.push({ type: 'drained', reason: c.mode === 'draining' ? 'stopped' : 'source-exhausted' });
  return { ...c, mode: 'closed' };
}

/**
 * May the prepared batch have side effects now? Always once every batch
 * before it is checkpointed; before that only into a sink with
 * `pipelinedWrites`, and only while the next checkpoint has room.
 */
function mayDeliver(c: BatchCycle): boolean {
  if (c.back.stage === 'free' && c.delivered.length === 0) return true;
  return c.config.pipelinedWrites && c.delivered.length < c.config.maxBatchesPerCheckpoint;
}
