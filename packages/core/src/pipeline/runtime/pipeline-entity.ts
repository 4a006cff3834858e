/**
 * The pipeline's event-sourced entity: it owns the journal of one pipeline
 * and judges every command with `decidePipeline`. It persists, it does not
 * execute: the pipeline actor (its parent) runs the batches and asks the
 * entity to record what happened, so a crash at any point leaves the journal
 * as the single source of truth to resume from.
 */
import type { ActorRef } from '../../actor/actor-ref.js';
import type { PipelineCommandRejectedError } from '../model/pipeline-errors.js';
import { persist, reply, type Effect } from '../../event-sourcing/effect.js';
import { eventSourced, type EventSourcedBehavior } from '../../event-sourcing/event-sourced.js';
import { every } from '../../event-sourcing/snapshot-policy.js';
import { decidePipeline, type PipelineDecision, type RetryPolicy } from '../model/pipeline-decider.js';
import { pipelineEventTags, type PipelineEvent } from '../model/pipeline-events.js';
import { emptyPipelineState, evolvePipeline, type PipelineState } from '../model/pipeline-state.js';

/** The entity's answer to a command. */
export type EntityReply =
  | { readonly ok: true; readonly state: PipelineState; readonly events: readonly PipelineEvent[]; readonly duplicate: boolean }
  | { readonly ok: false; readonly error: PipelineCommandRejectedError; readonly state: PipelineState };

export type EntityCommand =
  | { readonly type: 'decide'; readonly decision: PipelineDecision; readonly replyTo: ActorRef<EntityReply> }
  | { readonly type: 'get-state'; readonly replyTo: ActorRef<PipelineState> };

/** Retry policy used before a definition exists (it never applies then). */
const NO_RETRY: RetryPolicy = { maxRetries: 0, initialBackoffMs: 0, maxBackoffMs: 0, multiplier: 1, jitter: 0 };

export interface PipelineEntityOptions {
  readonly now: () => number;
  readonly random: () => number;
  /** Default 100, keeping 2 snapshots and deleting the events they cover (DOMAIN.md). */
  readonly snapshotEvery?: number;
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
      if (!result.ok) return reply(command.replyTo, { ok: false, error: result.error, state });
      const duplicate = result.duplicate === true;
      return persist<PipelineEvent, PipelineState>(result.events).thenReply(command.replyTo, (after): EntityReply => ({
        ok: true,
        state: after,
        events: result.events,
        duplicate,
      }));
    },
    onEvent: evolvePipeline,
    tagger: pipelineEventTags,
    snapshot: every(options.snapshotEvery ?? 100, { keep: 2, deleteEvents: true }),
  });
}
