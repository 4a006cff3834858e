import type { StoredDeadLetter } from '@dataflow/connectors';
import { validatePipelineDefinition, type PipelineDefinition } from '@dataflow/core';
import { allConnectorsRegistry } from '@dataflow/connectors';
import { describe, expect, it } from 'vitest';
import { replayBatchId, replayPlan } from './dead-letter-replay.js';

const definition = (transforms: unknown[]): PipelineDefinition => {
  const result = validatePipelineDefinition(
    { name: 'orders', source: { type: 'generator', fields: { id: { kind: 'sequence' } } }, transforms, sink: { type: 'console' }, deadLetter: { type: 'postgres' } },
    { connectors: allConnectorsRegistry },
  );
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.definition;
};
const twoTransforms = definition([
  { type: 'filter', expression: 'id > 0' },
  { type: 'json-parse', field: 'body', onError: 'dead-letter' },
]);

const letter = (id: number, stage: StoredDeadLetter['stage'], stageName: string, payload: StoredDeadLetter['payload'] = { id }): StoredDeadLetter => ({
  id,
  pipelineId: 'orders',
  stage,
  stageName,
  error: { message: `failed ${id}`, retriable: false },
  attempt: 1,
  payload,
  failedAt: 0,
});

describe('replayPlan', () => {
  it('replays the letters of the first transform, and of the sink of a pipeline without transforms, as they are', () => {
    const plan = replayPlan([letter(3, 'transform', 'transforms[0]:filter'), letter(5, 'transform', 'transforms[0]:filter')], twoTransforms, { rerunTransforms: false });
    expect(plan).toEqual({ letters: [expect.objectContaining({ id: 3 }), expect.objectContaining({ id: 5 })], records: [{ id: 3 }, { id: 5 }], batchId: replayBatchId([3, 5]), skipped: [] });
    expect(replayPlan([letter(7, 'sink', 'console')], definition([]), { rerunTransforms: false }).records).toEqual([{ id: 7 }]);
  });

  it('leaves source letters, payloads that are not records, and records that went through transforms, each with its reason', () => {
    const plan = replayPlan(
      [letter(1, 'source', 'file', 'not json'), letter(2, 'transform', 'transforms[1]:json-parse'), letter(4, 'sink', 'console'), letter(6, 'sink', 'console', [1, 2])],
      twoTransforms,
      { rerunTransforms: false },
    );
    expect(plan.batchId).toBeUndefined();
    expect(plan.records).toEqual([]);
    expect(plan.skipped).toEqual([
      { id: 1, reason: 'a source letter holds the raw input the file source could not parse (failed 1), not a record: correct it where it came from, or purge it' },
      { id: 2, reason: expect.stringMatching(/^the record already went through transforms\[0\] before it failed in transforms\[1\]:json-parse; .*rerunTransforms/) as unknown },
      { id: 4, reason: expect.stringMatching(/^the record already went through transforms\[0\.\.1\] before it failed in console/) as unknown },
      { id: 6, reason: 'its payload is not a record (a JSON object)' },
    ]);
  });

  it('replays records that went through transforms when told that running them again is safe, never a source letter', () => {
    const plan = replayPlan([letter(1, 'source', 'file', { id: 1 }), letter(2, 'transform', 'transforms[1]:json-parse'), letter(4, 'sink', 'console')], twoTransforms, {
      rerunTransforms: true,
    });
    expect(plan.letters.map((l) => l.id)).toEqual([2, 4]);
    expect(plan.skipped.map((s) => s.id)).toEqual([1]);
  });
});

describe('replayBatchId', () => {
  it('is the same for the same letters in any order, and differs for other letters with the same bounds and count', () => {
    expect(replayBatchId([9, 3, 7])).toBe(replayBatchId([3, 7, 9]));
    expect(replayBatchId([3, 7, 9])).toMatch(/^dlq:3-9:3:[0-9a-f]{12}$/);
    expect(replayBatchId([3, 8, 9])).not.toBe(replayBatchId([3, 7, 9]));
  });
});
