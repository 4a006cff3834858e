/**
 * The vocabulary of the batch cycle (`batch-cycle.ts`): its batches, the
 * phases of its two lanes, the events it is fed and the effects it asks for.
 */
import type { DataRecord } from '../../connector/data-record.js';
import type { DeadLetter } from '../../connector/dead-letter.js';
import type { SinkPosition, SinkWriteResult } from '../../connector/sink.js';
import type { SourceBatch, SourceOffset, SourceRecord } from '../../connector/source.js';
import type { TransformChainState } from '../../transforms/transform-chain.js';
import type { PipelineDefinition } from '../definition/pipeline-definition.js';
import type { PreparedRecords } from './batch-preparation.js';

export type BatchKind = 'source' | 'ingest' | 'tick' | 'flush';

/** A batch from the moment it is taken. */
export interface BatchInFlight {
  readonly batchId: string;
  readonly kind: BatchKind;
  /** Records read (polled or ingested). */
  readonly input: number;
  /** The source offset after this batch (for ingests, ticks and flushes: the offset before it). */
  readonly offset: SourceOffset;
  readonly startedAt: number;
  readonly attempt: number;
}

/** A batch after preparation (and, once delivered, with the sink's position). */
export interface PreparedBatch extends BatchInFlight {
  readonly output: readonly DataRecord[];
  readonly letters: readonly DeadLetter[];
  readonly failed: number;
  /** `failed` by where the records failed: `source`, `transforms[<i>]`, `sink`. */
  readonly failedByStage: Readonly<Record<string, number>>;
  readonly deadLettered: number;
  readonly transformStates: TransformChainState;
  readonly position: SinkPosition | null;
}

export type FrontLane =
  | { readonly stage: 'idle' }
  | { readonly stage: 'polling' }
  | { readonly stage: 'preparing'; readonly batch: BatchInFlight }
  /** Prepared; waits for the back lane before any side effect (a sink without `pipelinedWrites`). */
  | { readonly stage: 'ready'; readonly batch: PreparedBatch }
  | { readonly stage: 'dead-lettering'; readonly batch: PreparedBatch; readonly then: 'write' | 'deliver' }
  | { readonly stage: 'writing'; readonly batch: PreparedBatch };

/** The back lane: one journal append recording one or more delivered batches, oldest first. */
export type BackLane = { readonly stage: 'free' } | { readonly stage: 'checkpointing'; readonly batches: readonly PreparedBatch[] };

/** `opening` until every connector is open; `draining` after a stop (no new batch, flush, then closed). */
export type CycleMode = 'opening' | 'open' | 'draining' | 'closed';

export interface CycleConfig {
  readonly pipelineId: string;
  readonly definition: PipelineDefinition;
  /** A stage keeps state: empty polls are ticks, and the end flushes. */
  readonly stateful: boolean;
  readonly pipelinedWrites: boolean;
  readonly hasDeadLetterTarget: boolean;
  /** Delivered batches one checkpoint may record together (only a sink with `pipelinedWrites` gets ahead). */
  readonly maxBatchesPerCheckpoint: number;
}

export interface QueuedIngest {
  /** The journal key (`<pipeline>:ingest:<id>`). */
  readonly batchId: string;
  readonly records: readonly DataRecord[];
}

export interface BatchCycle {
  readonly config: CycleConfig;
  readonly mode: CycleMode;
  readonly paused: boolean;
  readonly front: FrontLane;
  readonly back: BackLane;
  /** Written, waiting for the back lane (their records released), oldest first. */
  readonly delivered: readonly PreparedBatch[];
  readonly queue: readonly QueuedIngest[];
  /** Batches recorded in the journal (numbers the source batches). */
  readonly recorded: number;
  /** Chain states as of the last checkpoint. */
  readonly committedStates: TransformChainState;
  /** The source offset of the newest batch taken. */
  readonly offset: SourceOffset;
  /** The sink position after the newest delivered batch. */
  readonly position: SinkPosition | null;
  readonly sourceDone: boolean;
  readonly flushed: boolean;
  /** The batch being retried and its attempts so far (from the pipeline's state). */
  readonly retry: { readonly batchId: string; readonly attempt: number } | null;
}

export type CycleEvent =
  | { readonly type: 'opened' }
  | { readonly type: 'polled'; readonly batch: SourceBatch }
  | { readonly type: 'prepared'; readonly batchId: string; readonly result: PreparedRecords }
  | { readonly type: 'dead-lettered'; readonly batchId: string }
  | { readonly type: 'written'; readonly batchId: string; readonly result: SinkWriteResult }
  | { readonly type: 'write-failed'; readonly batchId: string; readonly error: unknown }
  /** The checkpoint whose newest batch is `batchId` is in the journal; `recorded` batches are now recorded in all. */
  | { readonly type: 'checkpointed'; readonly batchId: string; readonly recorded: number; readonly duplicate: boolean }
  | { readonly type: 'acked' }
  /** A connector call or a preparation failed (open, poll, prepare, dead letters, checkpoint, ack). */
  | { readonly type: 'failed'; readonly batchId: string | undefined; readonly error: unknown }
  | { readonly type: 'ingest'; readonly ingest: QueuedIngest }
  | { readonly type: 'timeout'; readonly batchId: string }
  | { readonly type: 'pause' }
  | { readonly type: 'resume' }
  | { readonly type: 'drain' };

export type CycleEffect =
  | { readonly type: 'poll'; readonly maxRecords: number; readonly maxWaitMs: number }
  | { readonly type: 'prepare'; readonly batch: BatchInFlight; readonly records: readonly SourceRecord[]; readonly states: TransformChainState }
  | { readonly type: 'prepare-flush'; readonly batch: BatchInFlight; readonly states: TransformChainState }
  | { readonly type: 'send-dead-letters'; readonly batchId: string; readonly letters: readonly DeadLetter[] }
  | { readonly type: 'write'; readonly batchId: string; readonly records: readonly DataRecord[]; readonly sourceOffset: SourceOffset }
  | { readonly type: 'checkpoint'; readonly batches: readonly PreparedBatch[] }
  | { readonly type: 'ack'; readonly offset: SourceOffset }
  | { readonly type: 'arm-timeout'; readonly batchId: string; readonly delayMs: number }
  | { readonly type: 'cancel-timeout'; readonly batchId: string }
  /** A batch is recorded: tell listeners (and the caller of an ingest). */
  | { readonly type: 'completed'; readonly batch: PreparedBatch; readonly duplicate: boolean }
  /** A batch taken from the queue or in flight will not complete in this generation. */
  | { readonly type: 'abandoned'; readonly batch: BatchInFlight }
  /** The generation ends with a failure: record it (retry or fail) and close the connectors. */
  | { readonly type: 'fail'; readonly batchId: string | undefined; readonly error: unknown; readonly timedOutAfterMs?: number }
  /** The generation ends cleanly: the source is exhausted, or a stop drained it. */
  | { readonly type: 'drained'; readonly reason: 'source-exhausted' | 'stopped' };

export interface CycleStep {
  readonly cycle: BatchCycle;
  readonly effects: readonly CycleEffect[];
}

/** What a new generation starts from: the last checkpoint. */
export interface CycleStart {
  readonly recorded: number;
  readonly committedStates: TransformChainState;
  readonly offset: SourceOffset;
  readonly position: SinkPosition | null;
  readonly retry: { readonly batchId: string; readonly attempt: number } | null;
  readonly queue?: readonly QueuedIngest[];
  readonly paused?: boolean;
}

