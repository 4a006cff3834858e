/**
 * The pipeline's event-sourced entity: it owns the journal of one pipeline
 * and judges every command with `decidePipeline`. It persists, it does not
 * execute: the pipeline actor (its parent) runs the batches and asks the
 * entity to record what happened, so a crash at any point leaves the journal
 * as the single source of truth to resume from.
 */
import type { ActorRef } from '../../actor/actor-ref.js';
import { StatusReply } from '../../actor/status-reply.js';
import { persist, reply, type Effect } from '../../event-sourcing/effect.js';
import { eventSourced, type EventSourcedBehavior } from '../../event-sourcing/event-sourced.js';
import { every } from '../../event-sourcing/snapshot-policy.js';
import { decidePipeline, type PipelineDecision, type RetryPolicy } from '../model/pipeline-decider.js';
import { pipelineEventTags, type PipelineEvent } from '../model/pipeline-events.js';
import { emptyPipelineState, evolvePipeline, type PipelineState } from '../model/pipeline-state.js';

/** What an accepted decision did: the state after it, the events persisted, and whether the batch was already recorded. */
export interface EntityOutcome {
  readonly state: PipelineState;
  readonly events: readonly PipelineEvent[];
  readonly duplicate: boolean;
}

/**
 * The entity's answer to a decision: a success with the outcome, or an error
 * (a `PipelineCommandRejectedError` from the decider, or the journal's error
 * when the events could not be written).
 */
export type EntityReply = StatusReply<EntityOutcome>;

export type EntityCommand =
  | { readonly type: 'decide'; readonly decision: PipelineDecision; readonly replyTo: ActorRef<EntityReply> }
  | { readonly type: 'get-state'; readonly replyTo: ActorRef<PipelineState> };

/** Retry policy used before a definition exists (it never applies then). */
const NO_RETRY: RetryPolicy = { maxRetries: 0, initialBackoffMs: 0, maxBackoffMs: 0, multiplier: 1, jitter: 0 };

export interface PipelineEntityOptions {
  readonly now: () => number;
  readonly random: () => number;
  /** Default 100, keeping 2 snapshots (docs/domain.md). */
  readonly snapshotEvery?: number;
  /**
   * Delete the events the kept snapshots cover (default false). The journal
   * then stops growing with the pipeline's batches, but projections that
   * start later, rebuilds and the events API no longer see those events.
   */
  readonly deleteEventsCoveredBySnapshots?: boolean;
}

export function pipelinePersistenceId(pipelineId: string): string {
  return `pipeline-${pipelineId}`;
}

/**
 * The behavior value of a pipeline entity.
 *
 * @example
 * ```ts
 * const entity = spawnEventSourced(ctx, pipelineEntity({ now: () => clock.now(), random: Math.random }), 'orders', { persistence });
 * ```
 */
export function pipelineEntity(options: PipelineEntityOptions): EventSourcedBehavior<EntityCommand, PipelineEvent, PipelineState> {
  return eventSourced<EntityCommand, PipelineEvent, PipelineState>({
    persistenceId: pipelinePersistenceId,
    emptyState: emptyPipelineState,
    onCommand: (state, command): Effect<PipelineEvent, PipelineState> => {
      if (command.type === 'get-state') return reply(command.replyTo, state);
      const retry = state.status === 'empty' ? NO_RETRY : state.definition.retry;
      const result = decidePipeline(state, command.decision, { now: options.now(), random: options.random }, retry);
      if (!result.ok) return reply(command.replyTo, StatusReply.error<EntityOutcome>(result.error));
      const duplicate = result.duplicate === true;
      return persist<PipelineEvent, PipelineState>(result.events).thenReply(command.replyTo, (after): EntityReply =>
        StatusReply.success({ state: after, events: result.events, duplicate }),
      );
    },
    onEvent: evolvePipeline,
    tagger: pipelineEventTags,
    snapshot: every(options.snapshotEvery ?? 100, { keep: 2, deleteEvents: options.deleteEventsCoveredBySnapshots === true }),
  });
}
