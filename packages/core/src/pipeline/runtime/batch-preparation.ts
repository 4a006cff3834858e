/**
 * The pure part of a batch: turn what the source read into what the sink
 * gets, on the shared transform chain (`applyTransformChain`, so enrich
 * stages work), and apply each stage's error policy (`skip`, `fail`,
 * `dead-letter`) to the records a stage rejected. Also the sink's own error
 * policy on the records it refused. Nothing here talks to a connector or an
 * actor; a stage-level error (a lookup that fails) rejects, a record whose
 * policy is `fail` throws `StageFailedError`.
 */
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import type { DeadLetter, PipelineStage } from '../../connector/dead-letter.js';
import type { SourceRecord } from '../../connector/source.js';
import type { StageErrorPolicy } from '../../transforms/stage-error-policy.js';
import { applyTransformChain, flushTransformChain, type TransformChainResult, type TransformChainState } from '../../transforms/transform-chain.js';
import type { Transform } from '../../transforms/transform.js';
import type { PipelineDefinition } from '../definition/pipeline-definition.js';
import type { FailureInfo } from '../model/pipeline-events.js';
import { StageFailedError } from './pipeline-protocol.js';

/** What a batch carries to the sink: the output, its dead letters and the chain's next states. */
export interface PreparedRecords {
  readonly output: readonly DataRecord[];
  readonly letters: readonly DeadLetter[];
  /** Records dropped by `skip` or `dead-letter` (counted as failed). */
  readonly failed: number;
  /** `failed` by where the records failed: `source`, `transforms[<i>]` (absent when none failed). */
  readonly failedByStage?: Readonly<Record<string, number>>;
  readonly transformStates: TransformChainState;
}

/** Who the batch is and when it runs, for the dead letters it makes. */
export interface PreparationContext {
  readonly pipelineId: string;
  readonly batchId: string;
  readonly now: number;
  /** How often this batch was tried (1 for the first attempt). */
  readonly attempt: number;
}

/** The chain of a pipeline, built once per connector generation. */
export interface PreparationPlan {
  readonly definition: PipelineDefinition;
  readonly transforms: readonly Transform[];
  /** True when a stage keeps state (the pipeline then ticks on empty polls and flushes at the end). */
  readonly stateful: boolean;
}

/**
 * Runs the source's parse policy and the chain over one polled batch.
 * Synchronous unless a stage is (enrich).
 *
 * @example
 * ```ts
 * const prepared = prepareBatch(plan, states, batch.records, { pipelineId, batchId, now, attempt: 1 });
 * const ready = prepared instanceof Promise ? await prepared : prepared;
 * ```
 */
export function prepareBatch(
  plan: PreparationPlan,
  states: TransformChainState,
  records: readonly SourceRecord[],
  context: PreparationContext,
): PreparedRecords | Promise<PreparedRecords> {
  const letters: DeadLetter[] = [];
  let failed = 0;
  const byStage: Record<string, number> = {};
  const readable: DataRecord[] = [];
  const sourcePolicy = plan.definition.source.onError;
  for (const record of records) {
    if (record.ok) {
      readable.push(record.value);
      continue;
    }
    failed++;
    byStage.source = (byStage.source ?? 0) + 1;
    applyPolicy(letters, sourcePolicy, 'source', 'source', plan.definition.source.type, record.raw, { message: record.reason, retriable: false }, context);
  }
  const chained = applyTransformChain(plan.transforms, states, readable, { now: context.now });
  if (chained instanceof Promise) return chained.then((result) => withChainResult(plan, result, letters, failed, byStage, context));
  return withChainResult(plan, chained, letters, failed, byStage, context);
}

/**
 * Flushes the stateful stages (the end of a finite source, a stop): what they
 * still hold runs through the later stages as one more batch.
 */
export async function prepareFlush(plan: PreparationPlan, states: TransformChainState, context: PreparationContext): Promise<PreparedRecords> {
  const result = await flushTransformChain(plan.transforms, states, { now: context.now });
  return withChainResult(plan, result, [], 0, {}, context);
}

function withChainResult(
  plan: PreparationPlan,
  result: TransformChainResult,
  letters: DeadLetter[],
  failed: number,
  byStage: Record<string, number>,
  context: PreparationContext,
): PreparedRecords {
  let count = failed;
  for (const failure of result.failures) {
    const index = stageIndex(failure.stage);
    const stage = index === undefined ? undefined : plan.transforms[index];
    const policy: StageErrorPolicy = (index === undefined ? undefined : plan.definition.transforms[index]?.onError) ?? 'fail';
    count++;
    byStage[failure.stage] = (byStage[failure.stage] ?? 0) + 1;
    applyPolicy(
      letters,
      policy,
      'transform',
      failure.stage,
      `${failure.stage}:${stage?.type ?? 'transform'}`,
      failure.record,
      { message: failure.error.message, tag: failure.error.tag, retriable: false },
      context,
    );
  }
  const prepared = { output: result.records, letters, failed: count, transformStates: result.states };
  return count === 0 ? prepared : { ...prepared, failedByStage: byStage };
}

/** `transforms[3]` → 3. */
function stageIndex(stage: string): number | undefined {
  const match = /^transforms\[(\d+)\]$/.exec(stage);
  return match === null ? undefined : Number(match[1]);
}

/** Applies a stage's error policy to one failed record: throws for `fail`, adds a letter for `dead-letter`. */
function applyPolicy(
  letters: DeadLetter[],
  policy: StageErrorPolicy,
  stage: PipelineStage,
  at: string,
  stageName: string,
  payload: JsonValue,
  error: FailureInfo,
  context: PreparationContext,
): void {
  if (policy === 'fail') throw new StageFailedError(stageName, error.message, { at });
  if (policy === 'skip') return;
  letters.push({
    pipelineId: context.pipelineId,
    stage,
    stageName,
    error: error.tag === undefined ? { message: error.message, retriable: error.retriable } : error,
    attempt: context.attempt,
    payload,
    batchId: context.batchId,
    failedAt: context.now,
  });
}

/** What the sink's error policy made of records it refused: letters to send and how many records failed. */
export interface SinkRefusal {
  readonly letters: readonly DeadLetter[];
  readonly failed: number;
}

/**
 * The sink's error policy over records it refused (`rejected` of a write, or
 * the whole batch once its retries are exhausted). Throws `StageFailedError`
 * when the policy is `fail`.
 */
export function refuseAtSink(
  definition: PipelineDefinition,
  records: readonly { readonly record: DataRecord; readonly failure: FailureInfo }[],
  context: PreparationContext,
): SinkRefusal {
  const letters: DeadLetter[] = [];
  for (const { record, failure } of records) {
    applyPolicy(letters, definition.sink.onError, 'sink', 'sink', definition.sink.type, record, failure, context);
  }
  return { letters, failed: records.length };
}
