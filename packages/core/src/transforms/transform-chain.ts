/**
 * Runs a pipeline's transforms in order over one batch: each stage gets the
 * previous stage's output, failures are collected with their stage, and the
 * states of stateful stages are threaded through. The pipeline applies each
 * stage's `onError` to the failures; this module decides nothing about them.
 */
import type { DataRecord } from '../connector/data-record.js';
import type { RecordFailure, Transform, TransformContext } from './transform.js';

/**
 * The states of a chain's stages, by stage index: the state of a stateful
 * stage, `null` for a stateless one. Plain JSON, snapshotted with the pipeline.
 */
export type TransformChainState = readonly unknown[];

/** The outcome of running a chain over one batch. */
export interface TransformChainResult {
  /** What the last stage produced: the records for the sink. */
  readonly records: readonly DataRecord[];
  /** Every rejected record, in stage order. */
  readonly failures: readonly RecordFailure[];
  /** The next states, to keep (and snapshot) for the next batch. */
  readonly states: TransformChainState;
}

/**
 * The initial states of a chain.
 *
 * @example
 * ```ts
 * let states = initialTransformStates(stages);
 * ```
 */
export function initialTransformStates(transforms: readonly Transform[]): TransformChainState {
  return transforms.map((transform) => (transform.kind === 'stateful' ? transform.initialState() : null));
}

/**
 * Runs every stage over `records`. A stage-level error (e.g. a failing lookup
 * source) rejects the returned promise and leaves `states` as they were, so
 * the batch can be retried from the same states.
 *
 * @example
 * ```ts
 * const stages = definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]`, lookups }));
 * let states = initialTransformStates(stages);
 * const result = await runTransformChain(stages, states, batch, { now: clock.now() });
 * states = result.states; // only after the batch is durably processed
 * ```
 */
export async function runTransformChain(
  transforms: readonly Transform[],
  states: TransformChainState,
  records: readonly DataRecord[],
  context: TransformContext,
): Promise<TransformChainResult> {
  return applyTransformChain(transforms, states, records, context);
}

/**
 * The same chain as {@link runTransformChain}, but synchronous for as long as
 * the stages are: it returns a promise only from the first stage that returns
 * one (an enrich lookup), so a pipeline of synchronous stages pays no
 * microtask or mailbox hop per batch. A stage that throws synchronously throws
 * here; one that rejects rejects the returned promise.
 *
 * @example
 * ```ts
 * const result = applyTransformChain(stages, states, batch, { now: clock.now() });
 * const done = result instanceof Promise ? await result : result;
 * ```
 */
export function applyTransformChain(
  transforms: readonly Transform[],
  states: TransformChainState,
  records: readonly DataRecord[],
  context: TransformContext,
): TransformChainResult | Promise<TransformChainResult> {
  return continueChain(transforms, states, context, 0, records, [], []);
}

function continueChain(
  transforms: readonly Transform[],
  states: TransformChainState,
  context: TransformContext,
  from: number,
  input: readonly DataRecord[],
  failures: RecordFailure[],
  next: unknown[],
): TransformChainResult | Promise<TransformChainResult> {
  let current = input;
  for (let index = from; index < transforms.length; index++) {
    const transform = transforms[index] as Transform;
    if (transform.kind === 'stateful') {
      const result = transform.apply(index < states.length ? states[index] : transform.initialState(), current, context);
      next.push(result.state);
      current = result.records;
      pushAll(failures, result.failures);
      continue;
    }
    const result = transform.apply(current, context);
    if (result instanceof Promise) {
      return result.then((settled) => {
        next.push(null);
        pushAll(failures, settled.failures);
        return continueChain(transforms, states, context, index + 1, settled.records, failures, next);
      });
    }
    next.push(null);
    current = result.records;
    pushAll(failures, result.failures);
  }
  return { records: current, failures, states: next };
}

function pushAll<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item);
}

/**
 * Flushes the stateful stages (e.g. when a pipeline stops): what a stage
 * flushes runs through the stages after it. Returns the emptied states.
 *
 * @example
 * ```ts
 * const { records } = await flushTransformChain(stages, states, { now: clock.now() });
 * await sink.write(records);
 * ```
 */
export async function flushTransformChain(
  transforms: readonly Transform[],
  states: TransformChainState,
  context: TransformContext,
): Promise<TransformChainResult> {
  let records: DataRecord[] = [];
  const failures: RecordFailure[] = [];
  const next: unknown[] = [];
  for (const [index, transform] of transforms.entries()) {
    const state = index < states.length ? states[index] : null;
    if (transform.kind === 'stateful') {
      const applied = transform.apply(state ?? transform.initialState(), records, context);
      const flushed = transform.flush(applied.state, context);
      records = [...applied.records, ...flushed.records];
      failures.push(...applied.failures, ...flushed.failures);
      next.push(flushed.state);
    } else {
      const result = await transform.apply(records, context);
      records = [...result.records];
      failures.push(...result.failures);
      next.push(null);
    }
  }
  return { records, failures, states: next };
}
