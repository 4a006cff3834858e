/**
 * The API's view of a pipeline with `parallelism > 1` (ADR 0013): its tasks
 * are separate pipeline entities, but the API shows one pipeline. Status is
 * the combination of the tasks' statuses, counts are summed, and `tasks`
 * lists each task's id, status, reason or error, counts and checkpoint. The
 * fields of a single pipeline's view keep their meaning (additive: `tasks`
 * and `parallelism` are new; `checkpoint` is task 0's).
 */
import type { ConfiguredPipelineState, PipelineMetrics, PipelineState } from '@dataflow/core';

type Status = ConfiguredPipelineState['status'];

/** Which status a pipeline of several tasks shows, first match wins: any failed, any running, any paused, any stopped, else configured. */
const PRECEDENCE: readonly Status[] = ['failed', 'running', 'paused', 'stopped', 'configured'];

/**
 * The status of a pipeline from its tasks' statuses: the common one when
 * they agree, else the first of failed, running, paused, stopped, configured
 * that a task has (a task not found counts as failed: the pipeline is not
 * whole).
 *
 * @example
 * ```ts
 * combinedStatus(['running', 'running', 'failed']); // 'failed'
 * combinedStatus(['running', 'stopped']);           // 'running'
 * ```
 */
export function combinedStatus(statuses: readonly PipelineState['status'][]): Status {
  const known = statuses.map((s): Status => (s === 'empty' ? 'failed' : s));
  const [first] = known;
  if (first !== undefined && known.every((s) => s === first)) return first;
  return PRECEDENCE.find((s) => known.includes(s)) ?? 'configured';
}

/**
 * The metrics of a pipeline from its tasks': counts and throughputs summed,
 * the average batch time weighted by batches, the last processing time the
 * latest.
 *
 * @example
 * ```ts
 * summedMetrics(tasks.map((t) => t.metrics)).recordsProcessed; // every task's records
 * ```
 */
export function summedMetrics(metrics: readonly PipelineMetrics[]): PipelineMetrics {
  const batches = metrics.reduce((n, m) => n + m.batches, 0);
  const last = metrics.map((m) => m.lastProcessedAt).filter((t): t is number => typeof t === 'number');
  return {
    ...metrics[0],
    recordsProcessed: metrics.reduce((n, m) => n + m.recordsProcessed, 0),
    recordsFailed: metrics.reduce((n, m) => n + m.recordsFailed, 0),
    recordsDeadLettered: metrics.reduce((n, m) => n + m.recordsDeadLettered, 0),
    batches,
    avgBatchMs: batches === 0 ? 0 : metrics.reduce((n, m) => n + m.avgBatchMs * m.batches, 0) / batches,
    throughputPerSec: metrics.reduce((n, m) => n + m.throughputPerSec, 0),
    lastProcessedAt: last.length === 0 ? null : Math.max(...last),
  };
}

/** One task in a pipeline's `tasks`. */
export function taskView(taskId: string, state: PipelineState): Record<string, unknown> {
  if (state.status === 'empty') return { id: taskId, status: 'unknown' };
  return {
    id: taskId,
    status: state.status,
    ...(state.status === 'paused' || state.status === 'stopped' ? { reason: state.reason } : {}),
    ...(state.status === 'failed' ? { error: state.error } : {}),
    checkpoint: state.checkpoint,
    metrics: state.metrics,
    updatedAt: new Date(state.updatedAt).toISOString(),
  };
}

/**
 * Overlays a pipeline's view (task 0's, from `pipelineView`) with what its
 * tasks say together.
 *
 * @example
 * ```ts
 * const tasks = await node.pipelineTasks(id);
 * return tasks.length > 1 ? withTasks(pipelineView(state), taskIds, tasks) : pipelineView(state);
 * ```
 */
export function withTasks(view: Record<string, unknown>, taskIds: readonly string[], tasks: readonly PipelineState[]): Record<string, unknown> {
  const configured = tasks.filter((t): t is ConfiguredPipelineState => t.status !== 'empty');
  const status = combinedStatus(tasks.map((t) => t.status));
  const { reason: _reason, error: _error, ...rest } = view;
  const failed = configured.find((t) => t.status === 'failed');
  const reasonOf = configured.find((t) => t.status === status && (t.status === 'paused' || t.status === 'stopped'));
  return {
    ...rest,
    status,
    ...(reasonOf !== undefined && (reasonOf.status === 'paused' || reasonOf.status === 'stopped') ? { reason: reasonOf.reason } : {}),
    ...(status === 'failed' ? { error: failed?.status === 'failed' ? failed.error : { tag: 'node/task-missing', message: 'a task of the pipeline was not found', retriable: true } } : {}),
    metrics: summedMetrics(configured.map((t) => t.metrics)),
    parallelism: taskIds.length,
    tasks: taskIds.map((id, i) => taskView(id, tasks[i] ?? { status: 'empty' })),
  };
}
