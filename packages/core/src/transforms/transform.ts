/**
 * The transform SPI: a stage between source and sink that turns a batch of
 * records into output records plus per-record failures. Transforms are plain
 * objects, testable without a running pipeline; the pipeline actor runs them,
 * applies each stage's error policy to the failures and snapshots the state of
 * stateful ones.
 */
import type { DataRecord } from '../connector/data-record.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import { RecordRejectedError, type RecordRejectionReason } from './transform-errors.js';

/** What a transform may know about the moment it runs. */
export interface TransformContext {
  /** Current time in epoch milliseconds, from the pipeline's injected clock. */
  readonly now: number;
}

/**
 * One input record a stage could not process, with the reason and the stage
 * (e.g. `transforms[2]`) so the pipeline can skip, dead-letter or fail.
 */
export interface RecordFailure {
  readonly record: DataRecord;
  readonly error: RecordRejectedError;
  readonly stage: string;
}

/** The output of one application of a transform to a batch. */
export interface TransformResult {
  readonly records: readonly DataRecord[];
  readonly failures: readonly RecordFailure[];
}

/** The output of a stateful transform: the result and the next state. */
export interface StatefulTransformResult<State> extends TransformResult {
  readonly state: State;
}

/**
 * A transform without state between batches (filter, map, flat-map, enrich,
 * json-parse). `apply` may be asynchronous (enrich reads a lookup source).
 *
 * @example
 * ```ts
 * const onlyOk = createTransform(filter('status == "ok"'), { stage: 'transforms[0]' });
 * if (onlyOk.kind === 'stateless') {
 *   const { records, failures } = await onlyOk.apply([{ status: 'ok' }, { status: 'bad' }], { now: 0 });
 * }
 * ```
 */
export interface StatelessTransform {
  readonly kind: 'stateless';
  readonly type: string;
  readonly stage: string;
  apply(records: readonly DataRecord[], context: TransformContext): TransformResult | Promise<TransformResult>;
}

/**
 * A transform that keeps state across batches (the tumbling-window aggregate).
 * State is plain JSON data, so the pipeline can snapshot and restore it; each
 * call returns the next state instead of mutating the given one.
 *
 * @example
 * ```ts
 * let state = windowed.initialState();
 * const step = windowed.apply(state, records, { now: clock.now() });
 * state = step.state; // persist with the pipeline's snapshot
 * ```
 */
export interface StatefulTransform<State = unknown> {
  readonly kind: 'stateful';
  readonly type: string;
  readonly stage: string;
  initialState(): State;
  apply(state: State, records: readonly DataRecord[], context: TransformContext): StatefulTransformResult<State>;
  /** Emits everything still held (e.g. open windows) and returns the empty state; used when a pipeline stops. */
  flush(state: State, context: TransformContext): StatefulTransformResult<State>;
}

/** Any transform. */
export type Transform = StatelessTransform | StatefulTransform;

/**
 * Builds a stateless transform from a per-record function that returns the
 * output records, or a `RecordRejectedError` for a record it cannot process.
 *
 * @example
 * ```ts
 * const upper = perRecordTransform('upper', 'transforms[0]', (r) => [{ ...r, name: String(r.name).toUpperCase() }]);
 * ```
 */
export function perRecordTransform(
  type: string,
  stage: string,
  process: (record: DataRecord, context: TransformContext) => readonly DataRecord[] | RecordRejectedError,
): StatelessTransform {
  return {
    kind: 'stateless',
    type,
    stage,
    apply(records, context) {
      const output: DataRecord[] = [];
      const failures: RecordFailure[] = [];
      for (const record of records) {
        const result = process(record, context);
        if (isRecordRejection(result)) failures.push({ record, error: result, stage });
        else for (const out of result) output.push(out);
      }
      return { records: output, failures };
    },
  };
}

function isRecordRejection(result: readonly DataRecord[] | RecordRejectedError): result is RecordRejectedError {
  return isDataflowError(result, 'transform/record-rejected');
}

/**
 * Shorthand for the rejection of one record, for use in `perRecordTransform`.
 *
 * @example
 * ```ts
 * perRecordTransform('positive', stage, (r) => (typeof r.n === 'number' && r.n > 0 ? [r] : rejectRecord('not-a-number', 'n is not positive')));
 * ```
 */
export function rejectRecord(reason: RecordRejectionReason, message: string, cause?: unknown): RecordRejectedError {
  return new RecordRejectedError(reason, message, cause === undefined ? {} : { cause });
}
