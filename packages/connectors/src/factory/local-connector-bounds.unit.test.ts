/**
 * The node validates definitions against the local connectors' schemas, some
 * of them recursive (a generator constant is any JSON value). A value nested
 * thousands of levels deep there used to overflow zod's stack, come back as
 * "the options schema … is asynchronous" and crash the node later; core's
 * bounds answer it first with a field-level issue.
 */
import { validatePipelineDefinition } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { localConnectorRegistry } from './local-connector-schemas.js';

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { ab: value };
  return value;
}

const definition = (value: unknown) => ({
  name: 'deep-generator',
  source: { type: 'generator', fields: { id: { kind: 'sequence' }, payload: { kind: 'constant', value } } },
  sink: { type: 'console' },
});

describe('local connector options at the edge', () => {
  it('answers a generator constant nested 3 000 levels deep with a depth issue at its path', () => {
    const result = validatePipelineDefinition(definition(nested(3_000)), { connectors: localConnectorRegistry });
    expect(result.ok).toBe(false);
    const issues = result.ok ? [] : result.issues;
    expect(issues.map((i) => i.message)).toEqual(['The definition is nested deeper than 64 levels']);
    expect(issues[0]?.path.startsWith('source.fields.payload.value.ab.ab')).toBe(true);
  });

  it('still accepts a constant nested within the bound', () => {
    expect(validatePipelineDefinition(definition(nested(20)), { connectors: localConnectorRegistry }).ok).toBe(true);
  });
});
