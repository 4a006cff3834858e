/**
 * The pipeline actor's protocol: what users send it and what it answers, its
 * options, and the typed refusals of the actor itself (as opposed to the
 * refusals of the state machine, `PipelineCommandRejectedError`).
 */
import type { ActorRef } from '../../actor/actor-ref.js';
import type { StatusReply } from '../../actor/status-reply.js';
import type { DataRecord } from '../../connector/data-record.js';
import type { DeadLetterTarget } from '../../connector/dead-letter.js';
import type { Sink } from '../../connector/sink.js';
import type { Source, SourceOffset } from '../../connector/source.js';
import { DataflowError, isDataflowError } from '../../errors/dataflow-error.js';
import type { EntityPersistence } from '../../event-sourcing/recovery.js';
import type { RateLimiter } from '../../rate-limit/rate-limiter.js';
import type { LookupSource } from '../../transforms/enrich/lookup-source.js';
import type { DefinitionIssue } from '../definition/invalid-pipeline-definition-error.js';
import type { PipelineDefinition } from '../definition/pipeline-definition.js';
import type { PipelineState } from '../model/pipeline-state.js';

/** Creates the connectors a definition names (`@dataflow/connectors` provides one for its connector types). */
export interface ConnectorFactory {
  createSource(definition: PipelineDefinition['source']): Source;
  createSink(definition: PipelineDefinition['sink']): Sink;
  createDeadLetterTarget(definition: NonNullable<PipelineDefinition['deadLetter']>): DeadLetterTarget;
}

export interface PipelineActorOptions {
  readonly pipelineId: string;
  readonly persistence: EntityPersistence;
  readonly connectors: ConnectorFactory;
  /** Lookup sources for enrich transforms, by name. */
  readonly lookups?: Readonly<Record<string, LookupSource>>;
  /** Uniform random numbers in [0, 1) for retry jitter (default `Math.random`). */
  readonly random?: () => number;
  /** Called with the new state after every change (status, metrics, checkpoint). */
  readonly onStateChange?: (state: PipelineState) => void;
  /** Snapshot interval of the entity (default 100 events, keeping 2). */
  readonly snapshotEvery?: number;
  /**
   * Delete the events covered by the kept snapshots (default false: the
   * history stays for projections, rebuilds and the events API; true bounds
   * the journal's growth at their expense).
   */
  readonly deleteEventsCoveredBySnapshots?: boolean;
  /** External `ingest` batches waiting beyond this are refused with a retriable error (default 16). */
  readonly maxQueuedIngests?: number;
  /**
   * How long the pipeline waits for its journal entity to answer before it
   * treats the command as failed and backs off (default 30 000 ms). The entity
   * answers a failed write with an error at once; this bounds the wait when
   * it cannot answer at all.
   */
  readonly journalTimeoutMs?: number;
  /**
   * How many batches one checkpoint may record together (default 16). Only a
   * sink with `pipelinedWrites` gets ahead of the checkpoint; with such a sink
   * the batches written while a checkpoint is appended are recorded by the
   * next one in a single journal write.
   */
  readonly maxBatchesPerCheckpoint?: number;
  /** Backoff between attempts to record a failure or a status change the journal refused (default 100 ms to 10 s). */
  readonly journalBackoff?: { readonly minBackoffMs: number; readonly maxBackoffMs: number };
  /**
   * Admits the records of each poll of a pipeline whose definition has a
   * `rateLimit` (default: an in-process token bucket per pipeline actor, on
   * the actor system's clock and scheduler).
   */
  readonly rateLimiter?: RateLimiter;
  /** Least time between two samples of the source's lag (`Source.lag`), ms (default 5 000). */
  readonly lagIntervalMs?: number;
}

/** What a pipeline command achieved: the state after it; for an ingest, whether the batch was recorded before. */
export interface PipelineResult {
  readonly state: PipelineState;
  readonly duplicate?: boolean;
}

/**
 * The answer to a pipeline command, in the runtime's one reply style: a
 * success with the result, or an error (a typed `DataflowError`: a refusal of
 * the state machine, an invalid definition, the journal's retriable error, or
 * `PipelineUnavailableError`). Ask with `askWithStatus` to get the result or
 * the error thrown.
 */
export type PipelineReply = StatusReply<PipelineResult>;

export type PipelineReplyRef = ActorRef<PipelineReply>;

/** What users send to a pipeline. */
export type PipelineCommand =
  | { readonly type: 'create'; readonly definition: unknown; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'start'; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'stop'; readonly reason: string; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'pause'; readonly reason: string; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'resume'; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'reset'; readonly replyTo?: PipelineReplyRef }
  /** Sets where the source resumes (`null`: from its beginning); refused unless configured, stopped or failed. */
  | { readonly type: 'reset-offsets'; readonly sourceOffset: SourceOffset; readonly replyTo?: PipelineReplyRef }
  /** Deletes the pipeline (its state is empty again, its journal keeps the history); refused unless configured, stopped or failed. */
  | { readonly type: 'delete'; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'update-config'; readonly definition: unknown; readonly replyTo?: PipelineReplyRef }
  /**
   * Pushes a batch into a running pipeline (in addition to its source);
   * answered once it is checkpointed. Its id is the caller's: it lives in its
   * own id space, apart from the source's batch ids (`<pipeline>:<n>`), so an
   * ingest named `p1:2` never shadows a source batch.
   */
  | { readonly type: 'ingest'; readonly batchId: string; readonly records: readonly DataRecord[]; readonly replyTo?: PipelineReplyRef }
  | { readonly type: 'get-state'; readonly replyTo: ActorRef<PipelineState> };

/** A refusal of the pipeline actor itself (not of the state machine). */
export class PipelineUnavailableError extends DataflowError<'pipeline/unavailable'> {
  constructor(
    readonly pipelineId: string,
    reason: string,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super('pipeline/unavailable', `Pipeline ${pipelineId} is unavailable: ${reason}`, options);
  }
}

/** A record failed a stage whose error policy is `fail`. */
export class StageFailedError extends DataflowError<'pipeline/stage-failed'> {
  /** Where in the pipeline: `source`, `transforms[<i>]`, `sink` or `deadLetter` (the `stage` label of `pipeline_errors_total`). */
  readonly at: string;
  constructor(
    readonly stage: string,
    message: string,
    options: { cause?: unknown; at?: string } = {},
  ) {
    const { at, ...rest } = options;
    super('pipeline/stage-failed', `Stage ${stage} failed a record: ${message}`, { retriable: false, ...rest });
    this.at = at ?? stage;
  }
}

/**
 * An ingested record is out of bounds (nested too deep, too large: see
 * `checkRecordBounds`). The whole batch is refused before anything is
 * recorded; `issues` name the record and the field (`records[2].a.b`). Not
 * retriable: the same batch fails the same way.
 */
export class InvalidRecordError extends DataflowError<'pipeline/invalid-record'> {
  constructor(
    readonly pipelineId: string,
    readonly batchId: string,
    readonly issues: readonly DefinitionIssue[],
  ) {
    const listed = issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
    super('pipeline/invalid-record', `Pipeline ${pipelineId} refused ingest batch ${batchId}: ${listed}`, { retriable: false });
  }
}

/** True for the typed refusals and failures of a pipeline command. */
export function isPipelineRefusal(error: unknown): boolean {
  return isDataflowError(error) && error.tag.startsWith('pipeline/');
}

/** The journal key of a source batch: `<pipeline>:<n>`, n counting the batches recorded. */
export function sourceBatchId(pipelineId: string, n: number): string {
  return `${pipelineId}:${n}`;
}

/**
 * The journal key of an ingested batch: `<pipeline>:ingest:<id>`. After the
 * pipeline id a source key has digits only, so the two never meet.
 */
export function ingestBatchId(pipelineId: string, batchId: string): string {
  return `${pipelineId}:ingest:${batchId}`;
}
