/**
 * Runs the tasks of one pipeline with `parallelism: N` in one actor system,
 * as a node does (ADR 0013): one pipeline entity per task id
 * (`pipelineTaskIds`), the same definition for each, commands sent to every
 * task. Shared by the parallel Kafka int test and the crash child.
 */
import {
  askWithStatus,
  pipelineActor,
  pipelineTaskIds,
  type ActorRef,
  type ActorSystem,
  type ConnectorFactory,
  type EntityPersistence,
  type PipelineCommand,
  type PipelineResult,
  type PipelineState,
  type StatusReply,
} from '@dataflow/core';

/** The tasks of one pipeline, spawned. */
export interface SpawnedTasks {
  readonly taskIds: readonly string[];
  readonly refs: readonly ActorRef<PipelineCommand>[];
  /** The last state of each task, by task id. */
  readonly latest: Map<string, PipelineState>;
  /** Sends a command to every task and waits for all answers (a refused command rejects). */
  all(build: (replyTo: ActorRef<StatusReply<PipelineResult>>) => PipelineCommand): Promise<PipelineResult[]>;
}

/**
 * Spawns the actors of every task of `pipelineId`; they recover from the
 * journal (and resume if they were running).
 *
 * @example
 * ```ts
 * const tasks = spawnPipelineTasks(system, { pipelineId: 'orders', parallelism: 3, persistence, connectors });
 * await tasks.all((replyTo) => ({ type: 'create', definition, replyTo }));
 * await tasks.all((replyTo) => ({ type: 'start', replyTo }));
 * ```
 */
export function spawnPipelineTasks(
  system: ActorSystem,
  options: {
    readonly pipelineId: string;
    readonly parallelism: number;
    readonly persistence: EntityPersistence;
    readonly connectors: ConnectorFactory;
    readonly onStateChange?: (taskId: string, state: PipelineState) => void;
  },
): SpawnedTasks {
  const taskIds = pipelineTaskIds(options.pipelineId, options.parallelism);
  const latest = new Map<string, PipelineState>();
  const refs = taskIds.map((taskId) =>
    system.spawn(
      pipelineActor({
        pipelineId: taskId,
        persistence: options.persistence,
        connectors: options.connectors,
        onStateChange: (state) => {
          latest.set(taskId, state);
          options.onStateChange?.(taskId, state);
        },
      }),
      `pipeline-${taskId}`,
    ),
  );
  return {
    taskIds,
    refs,
    latest,
    all: (build) => Promise.all(refs.map((ref) => askWithStatus<PipelineCommand, PipelineResult>(ref, build, { timeoutMs: 30_000 }))),
  };
}

/** The partitions (`topic-partition`) and next offsets of a Kafka source checkpoint (`{ groupId, positions: [[topic, partition, "offset"]] }`). */
export function kafkaCheckpoint(state: PipelineState | undefined): { groupId: string | undefined; positions: Map<string, number> } {
  const offset = state === undefined || state.status === 'empty' ? undefined : (state.checkpoint?.sourceOffset as { groupId?: string; positions?: unknown } | null | undefined);
  const positions = new Map<string, number>();
  if (Array.isArray(offset?.positions)) {
    for (const p of offset.positions as unknown[]) if (Array.isArray(p)) positions.set(`${String(p[0])}-${String(p[1])}`, Number(p[2]));
  }
  return { groupId: offset?.groupId, positions };
}
