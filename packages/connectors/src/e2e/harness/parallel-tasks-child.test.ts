/**
 * The process the parallel-tasks crash test (`../kafka-parallel-crash.e2e.test.ts`)
 * kills: it runs every task of one pipeline with `parallelism: N` on the
 * Postgres journal, as one node would (ADR 0013). Started fresh it creates
 * and starts the tasks; started again after a crash the tasks recover from
 * their journals and resume from their own checkpoints.
 *
 *   node --conditions=@dataflow/source --import tsx parallel-tasks-child.test.ts
 *
 * Settings from the environment: CRASH_POSTGRES_URL, CRASH_SCHEMA (the
 * journal), CRASH_PIPELINE_ID, CRASH_DEFINITION (JSON, with `parallelism`),
 * CRASH_STOP_AT_OFFSETS: the tasks are stopped once, per partition the
 * furthest checkpointed next offset of any task, added up, reaches it.
 *
 * Stdout: one JSON object per line: `{ "type": "recovered", "statuses",
 * "offsets" }` once every task recovered, `{ "type": "progress", "offsets" }`
 * after checkpoints, `{ "type": "done", "offsets", "groups", "processed" }`
 * (each task's checkpointed consumer group and record count; exit 0); anything else
 * exits 1 with `{ "type": "error", "message" }`.
 */
import { ask, createActorSystem, type ConnectorFactory, type PipelineCommand, type PipelineState } from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import pg from 'pg';
import { createDeadLetterTarget, createSink, createSource } from '../../factory/create-connector.js';
import { kafkaCheckpoint, spawnPipelineTasks } from './parallel-tasks.js';

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const STOP_REASON = 'CRASH_STOP_AT_OFFSETS reached';

async function main(): Promise<number> {
  const pipelineId = setting('CRASH_PIPELINE_ID');
  const definition = JSON.parse(setting('CRASH_DEFINITION')) as Record<string, unknown>;
  const parallelism = Number(definition['parallelism'] ?? 1);
  const stopAt = Number(setting('CRASH_STOP_AT_OFFSETS'));
  const pool = new pg.Pool({ connectionString: setting('CRASH_POSTGRES_URL'), max: 6 });
  const persistence = await createPostgresPersistence({ pool, schema: setting('CRASH_SCHEMA'), ensureSchema: true });
  const system = createActorSystem({ name: `parallel-crash-${process.pid}` });
  try {
    const connectors: ConnectorFactory = { createSource: (d) => createSource(d), createSink: (d) => createSink(d), createDeadLetterTarget: (d) => createDeadLetterTarget(d) };
    let recovered = false;
    let stopping = false;
    let reported = -1;
    let failed: ((error: Error) => void) | undefined;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    let allStopped: (() => void) | undefined;
    const stopped = new Promise<void>((resolve) => (allStopped = resolve));
    /** Per partition the furthest next offset any task checkpointed, added up. */
    const offsets = (latest: Map<string, PipelineState>): number => {
      const furthest = new Map<string, number>();
      for (const state of latest.values()) for (const [key, next] of kafkaCheckpoint(state).positions) furthest.set(key, Math.max(next, furthest.get(key) ?? 0));
      return [...furthest.values()].reduce((a, b) => a + b, 0);
    };
    const tasks = spawnPipelineTasks(system, {
      pipelineId,
      parallelism,
      persistence,
      connectors,
      onStateChange: (taskId, state) => {
        if (state.status === 'failed') failed?.(new Error(`task ${taskId} failed: ${JSON.stringify(state.error)}`));
        if (!recovered) return;
        const total = offsets(tasks.latest);
        if (total !== reported) {
          reported = total;
          report({ type: 'progress', offsets: total });
        }
        if (!stopping && total >= stopAt) {
          stopping = true;
          tasks.all((replyTo) => ({ type: 'stop', reason: STOP_REASON, replyTo })).then(() => allStopped?.(), (error: unknown) => failed?.(error instanceof Error ? error : new Error(String(error))));
        }
      },
    });
    // A get-state is answered once the task recovered from its journal.
    const recoveredStates = await Promise.all(
      tasks.refs.map((ref) => ask<PipelineCommand, PipelineState>(ref, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: 60_000 })),
    );
    for (const [i, state] of recoveredStates.entries()) if (!tasks.latest.has(tasks.taskIds[i] ?? '')) tasks.latest.set(tasks.taskIds[i] ?? '', state);
    recovered = true;
    report({ type: 'recovered', statuses: recoveredStates.map((s) => s.status), offsets: offsets(tasks.latest) });
    if (recoveredStates.every((s) => s.status === 'empty')) await tasks.all((replyTo) => ({ type: 'create', definition, replyTo }));
    if (recoveredStates.every((s) => s.status === 'empty' || s.status === 'configured')) await tasks.all((replyTo) => ({ type: 'start', replyTo }));
    await Promise.race([stopped, failure]);
    const final = tasks.taskIds.map((id) => tasks.latest.get(id));
    report({
      type: 'done',
      offsets: offsets(tasks.latest),
      groups: final.map((state) => kafkaCheckpoint(state).groupId ?? null),
      processed: final.map((state) => (state === undefined || state.status === 'empty' ? 0 : state.metrics.recordsProcessed)),
    });
    return 0;
  } finally {
    await system.terminate();
    await persistence.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    report({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  },
);
