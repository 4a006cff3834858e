/**
 * Which dead letters a replay pushes back into their pipeline, and under
 * which batch id. A replay runs each payload through the pipeline's whole
 * current chain (every transform, then the sink), so a letter is replayed
 * only when that is what it missed:
 *
 * - a `source` letter holds the raw input the source could not parse, not a
 *   record: it is skipped (fix it where it came from, or purge it);
 * - a letter of `transforms[0]`, or of the sink of a pipeline without
 *   transforms, holds the record exactly as the failed stage got it;
 * - a letter of a later transform, or of the sink behind transforms, holds a
 *   record that already went through the transforms before the stage:
 *   replaying it applies them a second time, so it is skipped unless the
 *   caller says that is safe (`rerunTransforms`).
 *
 * Pure: the route reads the letters and runs the plan.
 */
import type { DataRecord, JsonValue, PipelineDefinition } from '@dataflow/core';
import type { StoredDeadLetter } from '@dataflow/connectors';
import { createHash } from 'node:crypto';

/** A letter left in the queue, and why. */
export interface SkippedLetter {
  readonly id: number;
  readonly reason: string;
}

/** What to ingest and what to leave. */
export interface ReplayPlan {
  /** The letters replayed, oldest first. */
  readonly letters: readonly StoredDeadLetter[];
  readonly records: readonly DataRecord[];
  /** Derived from the letter ids: the same letters always get the same batch id (see `replayBatchId`). */
  readonly batchId: string | undefined;
  readonly skipped: readonly SkippedLetter[];
}

const isRecord = (value: JsonValue): value is DataRecord => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The batch id of a replay of `ids`: `dlq:<first>-<last>:<count>:<digest>`.
 * Letter ids are never reused, so a replay that ran but whose letters were
 * not deleted yet (a crash in between) gets the same id when the same letters
 * are replayed again: the pipeline answers `duplicate` and nothing runs twice.
 *
 * @example
 * ```ts
 * replayBatchId([3, 7, 9]); // 'dlq:3-9:3:1b2c...'
 * ```
 */
export function replayBatchId(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const digest = createHash('sha256').update(sorted.join(',')).digest('hex').slice(0, 12);
  return `dlq:${sorted[0] ?? 0}-${sorted.at(-1) ?? 0}:${sorted.length}:${digest}`;
}

/**
 * Splits `letters` into those to replay and those to leave, with reasons.
 *
 * @example
 * ```ts
 * const plan = replayPlan(letters, state.definition, { rerunTransforms: false });
 * if (plan.batchId !== undefined) await node.ingest(pipelineId, plan.batchId, plan.records);
 * ```
 */
export function replayPlan(letters: readonly StoredDeadLetter[], definition: PipelineDefinition, options: { readonly rerunTransforms: boolean }): ReplayPlan {
  const transforms = definition.transforms.length;
  const replayed: StoredDeadLetter[] = [];
  const skipped: SkippedLetter[] = [];
  for (const letter of letters) {
    const reason = skipReason(letter, transforms, options.rerunTransforms);
    if (reason === undefined) replayed.push(letter);
    else skipped.push({ id: letter.id, reason });
  }
  return {
    letters: replayed,
    records: replayed.map((l) => l.payload as DataRecord),
    batchId: replayed.length === 0 ? undefined : replayBatchId(replayed.map((l) => l.id)),
    skipped,
  };
}

function skipReason(letter: StoredDeadLetter, transforms: number, rerunTransforms: boolean): string | undefined {
  if (letter.stage === 'source') {
    return `a source letter holds the raw input the ${letter.stageName} source could not parse (${letter.error.message}), not a record: correct it where it came from, or purge it`;
  }
  if (!isRecord(letter.payload)) return 'its payload is not a record (a JSON object)';
  if (rerunTransforms) return undefined;
  const before = letter.stage === 'sink' ? transforms : stageIndex(letter.stageName);
  if (before === undefined || before === 0) return undefined;
  const passed = before === 1 ? 'transforms[0]' : `transforms[0..${before - 1}]`;
  return `the record already went through ${passed} before it failed in ${letter.stageName}; a replay runs every transform again: pass rerunTransforms if that is safe`;
}

/** `transforms[2]:map` → 2. */
function stageIndex(stageName: string): number | undefined {
  const match = /^transforms\[(\d+)\]/.exec(stageName);
  return match === null ? undefined : Number(match[1]);
}
