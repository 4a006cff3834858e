/**
 * The coordinator actor: the cluster's registry of pipelines as an
 * event-sourced behavior (persistence id `coordinator`, every event tagged
 * `coordinator`). It judges commands with the pure model of
 * `coordinator-model.ts` and is how a starting node learns which pipelines
 * exist and which were running (remember entities).
 *
 * Every reply is a `StatusReply` (ask it with `askWithStatus`): a success with
 * the answer, or an error — a refused command (`CoordinatorCommandRejectedError`),
 * a failed journal write, a full stash — sent by the handler or by the entity.
 */
import type { ActorRef } from '../actor/actor-ref.js';
import { StatusReply } from '../actor/status-reply.js';
import type { ActorSpawner } from '../event-sourcing/spawn-event-sourced.js';
import { spawnEventSourced } from '../event-sourcing/spawn-event-sourced.js';
import { none, persist, reply, type Effect } from '../event-sourcing/effect.js';
import { eventSourced, type EventSourcedBehavior } from '../event-sourcing/event-sourced.js';
import type { EntityPersistence } from '../event-sourcing/recovery.js';
import { every } from '../event-sourcing/snapshot-policy.js';
import type { PipelineStatus } from '../pipeline/model/pipeline-state.js';
import {
  COORDINATOR_TAG,
  decideCoordinator,
  emptyCoordinatorState,
  evolveCoordinator,
  listPipelines,
  resourcesAvailable,
  systemStatus,
  type CoordinatorDecision,
  type CoordinatorEvent,
  type CoordinatorState,
  type RegisteredPipeline,
  type ResourceLimits,
  type SystemStatus,
} from './coordinator-model.js';
import { COORDINATOR_STATE_SCHEMA_VERSION, coordinatorPersistence, fromStoredCoordinatorState } from './coordinator-snapshot.js';

/** The persistence id (and entity id) of the one coordinator of a cluster. */
export const COORDINATOR_PERSISTENCE_ID = 'coordinator';

/**
 * The answer to a command that changes the registry: the pipeline as it is
 * after the command (undefined after `unregister` and `report-resources`), or
 * the error — `CoordinatorCommandRejectedError` when the command is refused,
 * the journal's error when its events could not be written.
 */
export type CoordinatorReply = StatusReply<RegisteredPipeline | undefined>;

/** Whether the cluster has room for more work, and why not. */
export interface ResourceCheck {
  readonly available: boolean;
  readonly reason?: string;
}

/** What the coordinator accepts. */
export type CoordinatorCommand =
  | {
      readonly type: 'register';
      readonly pipelineId: string;
      readonly name: string;
      readonly sourceType: string;
      readonly sinkType: string;
      /** The pipeline's tasks (ADR 0013); absent: 1. */
      readonly parallelism?: number;
      readonly replyTo: ActorRef<CoordinatorReply>;
    }
  | { readonly type: 'unregister'; readonly pipelineId: string; readonly replyTo: ActorRef<CoordinatorReply> }
  | {
      readonly type: 'update-status';
      readonly pipelineId: string;
      readonly status: PipelineStatus;
      readonly totalRecords: number;
      readonly failedRecords: number;
      readonly replyTo: ActorRef<CoordinatorReply>;
    }
  | {
      readonly type: 'report-resources';
      readonly nodeId: string;
      readonly cpuPercent: number;
      readonly memoryMb: number;
      readonly replyTo: ActorRef<CoordinatorReply>;
    }
  | { readonly type: 'get-system-status'; readonly replyTo: ActorRef<StatusReply<SystemStatus>> }
  | { readonly type: 'get-pipeline'; readonly pipelineId: string; readonly replyTo: ActorRef<StatusReply<RegisteredPipeline | undefined>> }
  | { readonly type: 'list-pipelines'; readonly status?: PipelineStatus; readonly replyTo: ActorRef<StatusReply<readonly RegisteredPipeline[]>> }
  | { readonly type: 'check-resources'; readonly replyTo: ActorRef<StatusReply<ResourceCheck>> };

/** Default limits of `check-resources`: 80 % CPU on every node, 4 GiB of memory in total. */
export const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { maxCpuPercent: 80, maxMemoryMb: 4096 };

export interface CoordinatorBehaviorOptions {
  /** Epoch milliseconds stamped on events (pass the actor system's clock). */
  readonly now: () => number;
  /** Limits of `check-resources` (default {@link DEFAULT_RESOURCE_LIMITS}). */
  readonly limits?: ResourceLimits;
}

type Mutation = Extract<CoordinatorCommand, { type: 'register' | 'unregister' | 'update-status' | 'report-resources' }>;

function decisionOf(command: Mutation): CoordinatorDecision {
  switch (command.type) {
    case 'register':
      return {
        type: 'register',
        pipelineId: command.pipelineId,
        name: command.name,
        sourceType: command.sourceType,
        sinkType: command.sinkType,
        ...(command.parallelism === undefined ? {} : { parallelism: command.parallelism }),
      };
    case 'unregister':
      return { type: 'unregister', pipelineId: command.pipelineId };
    case 'update-status':
      return {
        type: 'update-status',
        pipelineId: command.pipelineId,
        status: command.status,
        totalRecords: command.totalRecords,
        failedRecords: command.failedRecords,
      };
    case 'report-resources':
      return { type: 'report-resources', usage: { nodeId: command.nodeId, cpuPercent: command.cpuPercent, memoryMb: command.memoryMb } };
  }
}

/**
 * The coordinator as a behavior value: snapshots every 50 events keeping 2
 * (and deleting the events they cover, as status updates arrive with every
 * batch of every pipeline). Its state holds `Map`s, which snapshots store as
 * entries: run it with {@link coordinatorPersistence} around the persistence
 * (as `spawnCoordinator` does), or its snapshots fail to serialize.
 * Snapshots of schema version 1 (objects keyed by id) are upcast.
 *
 * @example
 * ```ts
 * const coordinator = spawnEventSourced(system, coordinatorBehavior({ now: () => system.clock.now() }), 'coordinator', {
 *   persistence: coordinatorPersistence(persistence),
 * });
 * ```
 */
export function coordinatorBehavior(options: CoordinatorBehaviorOptions): EventSourcedBehavior<CoordinatorCommand, CoordinatorEvent, CoordinatorState> {
  const limits = options.limits ?? DEFAULT_RESOURCE_LIMITS;
  return eventSourced<CoordinatorCommand, CoordinatorEvent, CoordinatorState>({
    persistenceId: () => COORDINATOR_PERSISTENCE_ID,
    emptyState: emptyCoordinatorState,
    onCommand: (state, command): Effect<CoordinatorEvent, CoordinatorState> => {
      switch (command.type) {
        case 'get-system-status':
          return reply(command.replyTo, StatusReply.success(systemStatus(state)));
        case 'get-pipeline':
          return reply(command.replyTo, StatusReply.success(state.pipelines.get(command.pipelineId)));
        case 'list-pipelines':
          return reply(command.replyTo, StatusReply.success(listPipelines(state, command.status)));
        case 'check-resources':
          return reply(command.replyTo, StatusReply.success(resourcesAvailable(state, limits)));
        default: {
          const result = decideCoordinator(state, decisionOf(command), options.now());
          if (!result.ok) return reply(command.replyTo, StatusReply.error<RegisteredPipeline | undefined>(result.error));
          const pipelineId = command.type === 'report-resources' ? undefined : command.pipelineId;
          const answer = (after: CoordinatorState): CoordinatorReply =>
            StatusReply.success(pipelineId === undefined ? undefined : after.pipelines.get(pipelineId));
          if (result.events.length === 0) return none<CoordinatorEvent, CoordinatorState>().thenReply(command.replyTo, () => answer(state));
          return persist<CoordinatorEvent, CoordinatorState>(result.events).thenReply(command.replyTo, answer);
        }
      }
    },
    onEvent: evolveCoordinator,
    tagger: () => [COORDINATOR_TAG],
    snapshot: every(50, { keep: 2, deleteEvents: true }),
    stateSchemaVersion: COORDINATOR_STATE_SCHEMA_VERSION,
    snapshotUpcasters: { 1: (stored) => fromStoredCoordinatorState(stored, 1) },
  });
}

export interface SpawnCoordinatorOptions {
  readonly persistence: EntityPersistence;
  /** Epoch milliseconds stamped on events (default: the wall clock). */
  readonly now?: () => number;
  readonly limits?: ResourceLimits;
  /** Actor name (default `coordinator`). */
  readonly name?: string;
}

/**
 * Spawns the coordinator; it recovers its registry from the journal.
 *
 * @example
 * ```ts
 * const coordinator = spawnCoordinator(system, { persistence, now: () => system.clock.now() });
 * const running = await askWithStatus<CoordinatorCommand, readonly RegisteredPipeline[]>(
 *   coordinator, (replyTo) => ({ type: 'list-pipelines', status: 'running', replyTo }), { timeoutMs: 5_000 });
 * // A refused command rejects: CoordinatorCommandRejectedError (tag coordinator/command-rejected).
 * await askWithStatus<CoordinatorCommand, RegisteredPipeline | undefined>(
 *   coordinator, (replyTo) => ({ type: 'update-status', pipelineId: 'ghost', status: 'running', totalRecords: 0, failedRecords: 0, replyTo }), { timeoutMs: 5_000 });
 * ```
 */
export function spawnCoordinator(parent: ActorSpawner, options: SpawnCoordinatorOptions): ActorRef<CoordinatorCommand> {
  const behavior = coordinatorBehavior({
    now: options.now ?? Date.now,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  return spawnEventSourced(parent, behavior, COORDINATOR_PERSISTENCE_ID, {
    persistence: coordinatorPersistence(options.persistence),
    name: options.name ?? 'coordinator',
  });
}
