/**
 * The pipeline actor's side of its journal entity: spawning it, asking it to
 * decide with one reply style (a `StatusReply`, an entity that cannot take
 * commands answering with the error itself), and the decision that records
 * delivered batches with their checkpoint.
 */
import type { ActorContext } from '../../actor/actor-context.js';
import type { ActorRef } from '../../actor/actor-ref.js';
import { ask } from '../../actor/ask.js';
import { StatusReply } from '../../actor/status-reply.js';
import { DataflowError } from '../../errors/dataflow-error.js';
import { spawnEventSourced } from '../../event-sourcing/spawn-event-sourced.js';
import { classifyFailure } from '../model/classify-failure.js';
import type { CompletedBatch, PipelineDecision } from '../model/pipeline-decider.js';
import type { PipelineState } from '../model/pipeline-state.js';
import type { PreparedBatch } from './batch-cycle-types.js';
import { pipelineEntity, type EntityCommand, type EntityOutcome } from './pipeline-entity.js';
import { PipelineUnavailableError, type PipelineActorOptions } from './pipeline-protocol.js';

const DEFAULT_JOURNAL_TIMEOUT_MS = 30_000;

/** The journal entity of one pipeline, as its pipeline actor talks to it. */
export class PipelineJournal {
  private constructor(
    readonly ref: ActorRef<EntityCommand>,
    private readonly pipelineId: string,
    private readonly timeoutMs: number,
  ) {}

  /** Spawns the entity as the child `entity` of the pipeline actor. */
  static spawn<M>(ctx: ActorContext<M>, options: PipelineActorOptions): PipelineJournal {
    const ref = spawnEventSourced(
      ctx,
      pipelineEntity({
        now: () => ctx.system.clock.now(),
        random: options.random ?? Math.random,
        ...(options.snapshotEvery === undefined ? {} : { snapshotEvery: options.snapshotEvery }),
        ...(options.deleteEventsCoveredBySnapshots === undefined ? {} : { deleteEventsCoveredBySnapshots: options.deleteEventsCoveredBySnapshots }),
      }),
      options.pipelineId,
      { persistence: options.persistence, name: 'entity' },
    );
    return new PipelineJournal(ref, options.pipelineId, options.journalTimeoutMs ?? DEFAULT_JOURNAL_TIMEOUT_MS);
  }

  /** The recovered state (once recovery is done). */
  state(): Promise<PipelineState> {
    return ask<EntityCommand, PipelineState>(this.ref, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: this.timeoutMs });
  }

  /** Asks the entity to decide; resolves with the outcome, rejects with the refusal or the journal's error. */
  decide(decision: PipelineDecision): Promise<EntityOutcome> {
    return ask<EntityCommand, unknown>(this.ref, (replyTo) => ({ type: 'decide', decision, replyTo: replyTo }), {
      timeoutMs: this.timeoutMs,
    }).then((reply) => {
      if (StatusReply.isStatusReply(reply)) {
        if (reply.status === 'success') return reply.value as EntityOutcome;
        throw reply.error;
      }
      // An entity that cannot take commands (stopped, stash full) answers with the error itself.
      throw reply instanceof Error ? reply : new PipelineUnavailableError(this.pipelineId, 'its journal entity gave no status', { retriable: true });
    });
  }
}

/** The decision recording delivered batches (oldest first) and the newest one's checkpoint. */
export function completeBatches(batches: readonly PreparedBatch[], stateful: boolean, now: number): { decision: PipelineDecision; newest: string } {
  const completed = batches.map(
    (b): CompletedBatch => ({
      batchId: b.batchId,
      recordCount: b.input,
      sourceOffset: b.offset,
      sinkPosition: b.position,
      transformStates: stateful ? b.transformStates : null,
      successCount: b.input - b.failed,
      failureCount: b.failed,
      deadLetterCount: b.deadLettered,
      processingMs: Math.max(0, now - b.startedAt),
    }),
  );
  const newest = completed[completed.length - 1] as CompletedBatch;
  const decision: PipelineDecision = completed.length === 1 ? { type: 'complete-batch', ...newest } : { type: 'complete-batches', batches: completed };
  return { decision, newest: newest.batchId };
}

/** A failure as the typed error a pipeline command is answered with. */
export function asDataflowError(pipelineId: string, error: unknown): DataflowError {
  if (error instanceof DataflowError) return error as DataflowError;
  const failure = classifyFailure(error);
  return new PipelineUnavailableError(pipelineId, failure.message, { retriable: failure.retriable, cause: error });
}
