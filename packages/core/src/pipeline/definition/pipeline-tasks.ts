/**
 * Pipeline tasks: a pipeline with `parallelism: N` runs as N tasks, each its
 * own event-sourced pipeline entity (own persistence id, own checkpoint),
 * whose sources share one consumer group so the broker splits the partitions
 * among them (ADR 0013). Task 0 keeps the pipeline's id, so a pipeline of
 * parallelism 1 is exactly what it was before; task k > 0 is `<id>.<k>`. `.`
 * cannot occur in a pipeline id (letters, digits, `-` and `_`), so a task id
 * never collides with a pipeline id and splits back without ambiguity; it is
 * also valid as is in actor names, persistence ids, Kafka transactional ids
 * and URL paths (`#` would need escaping in URLs and is no actor name).
 */

/** Separates a pipeline id from its task number in the id of task k > 0. */
export const TASK_SEPARATOR = '.';

/** The most tasks a pipeline may run (`parallelism` is 1..MAX_PARALLELISM). */
export const MAX_PARALLELISM = 64;

/** Which task of which pipeline an entity is. */
export interface PipelineTask {
  /** The pipeline's id (task 0's id). */
  readonly pipelineId: string;
  /** 0-based. */
  readonly index: number;
}

/**
 * The id of task `index` of `pipelineId`.
 *
 * @example
 * ```ts
 * pipelineTaskId('orders', 0); // 'orders'
 * pipelineTaskId('orders', 2); // 'orders.2'
 * ```
 */
export function pipelineTaskId(pipelineId: string, index: number): string {
  return index === 0 ? pipelineId : `${pipelineId}${TASK_SEPARATOR}${index}`;
}

/**
 * The ids of every task of a pipeline with `parallelism` tasks (undefined: 1).
 *
 * @example
 * ```ts
 * pipelineTaskIds('orders', 3); // ['orders', 'orders.1', 'orders.2']
 * ```
 */
export function pipelineTaskIds(pipelineId: string, parallelism: number | undefined): readonly string[] {
  const count = Math.max(1, parallelism ?? 1);
  return Array.from({ length: count }, (_, index) => pipelineTaskId(pipelineId, index));
}

/**
 * The pipeline and task number of an entity id: `orders.2` is task 2 of
 * `orders`; any id without a valid task suffix is task 0 of itself.
 *
 * @example
 * ```ts
 * pipelineTaskOf('orders.2'); // { pipelineId: 'orders', index: 2 }
 * pipelineTaskOf('orders');   // { pipelineId: 'orders', index: 0 }
 * ```
 */
export function pipelineTaskOf(id: string): PipelineTask {
  const at = id.lastIndexOf(TASK_SEPARATOR);
  if (at <= 0) return { pipelineId: id, index: 0 };
  const suffix = id.slice(at + 1);
  if (!/^[1-9][0-9]{0,2}$/.test(suffix)) return { pipelineId: id, index: 0 };
  return { pipelineId: id.slice(0, at), index: Number(suffix) };
}
