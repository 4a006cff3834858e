/**
 * What a user may send as a definition at the edges (issue 9 defects 14 and
 * 16): values nested thousands of levels deep, huge strings, `__proto__` keys
 * and cycles are answered with one field-level issue, never a crash; missing
 * and unknown keys are named at their own paths.
 */
import * as z from 'zod';
import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { connectorRegistry } from './connector-registry.js';
import { definePipeline, type MapDefinitionInput } from './define-pipeline.js';
import type { InvalidPipelineDefinitionError } from './invalid-pipeline-definition-error.js';
import { validatePipelineDefinition, type PipelineDefinitionInput } from './pipeline-definition.js';

const minimal = { name: 'orders', source: { type: 'generator' }, sink: { type: 'console' } };

/** `{ [key]: { [key]: ... 1 } }` with `levels` objects. */
function nested(levels: number, key = 'a'): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { [key]: value };
  return value;
}

function issuesOf(input: unknown, options: Parameters<typeof validatePipelineDefinition>[1] = {}) {
  const result = validatePipelineDefinition(input, options);
  if (result.ok) throw new Error('expected the definition to be invalid');
  return result.issues;
}

/** A registry whose generator takes JSON constants, like the local generator source (a recursive zod schema). */
const registry = connectorRegistry({
  sources: { generator: z.looseObject({ type: z.literal('generator'), constant: z.json().optional() }) },
  sinks: { console: z.looseObject({ type: z.literal('console') }) },
});

describe('definition bounds: depth', () => {
  it('answers a map value nested 3 000 levels deep (about 21 KB of JSON) with a field-level issue instead of a stack overflow', () => {
    const input = { ...minimal, transforms: [{ type: 'map', set: [{ to: 'x', value: nested(3_000, 'ab') }] }] };
    expect(JSON.stringify(input).length).toBeGreaterThan(21_000);
    const issues = issuesOf(input);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toBe('The definition is nested deeper than 64 levels');
    expect(issues[0]?.path).toBe(`transforms[0].set[0].value${'.ab'.repeat(59)}`);
  });

  it('answers deep connector options with the depth issue, not "the options schema is asynchronous"', () => {
    const issues = issuesOf({ ...minimal, source: { type: 'generator', constant: nested(3_000) } }, { connectors: registry });
    expect(issues.map((i) => i.message)).toEqual(['The definition is nested deeper than 64 levels']);
    expect(issues[0]?.path.startsWith('source.constant.a.a')).toBe(true);
  });

  it('throws the typed invalid-definition error from definePipeline, also for 100 000 levels', () => {
    let caught: unknown;
    try {
      definePipeline({ ...minimal, transforms: [{ type: 'map', set: [{ to: 'x', value: nested(100_000) }] } as MapDefinitionInput] });
    } catch (error) {
      caught = error;
    }
    expect(isDataflowError(caught, 'pipeline/invalid-definition')).toBe(true);
    expect((caught as InvalidPipelineDefinitionError).issues).toHaveLength(1);
  });

  it('accepts 64 levels in all and refuses 65', () => {
    // The definition is level 1, transforms 2, the stage 3, set 4, its entry 5, value 6: 58 more objects reach 64.
    const at = (levels: number): PipelineDefinitionInput => ({ ...minimal, transforms: [{ type: 'map', set: [{ to: 'x', value: nested(levels) as z.core.util.JSONType }] }] });
    expect(validatePipelineDefinition(at(59)).ok).toBe(true);
    expect(issuesOf(at(60))).toEqual([{ path: `transforms[0].set[0].value${'.a'.repeat(59)}`, message: 'The definition is nested deeper than 64 levels' }]);
  });
});

describe('definition bounds: size, __proto__ and cycles', () => {
  it('refuses a definition over 1 MiB, naming the field that passes the limit', () => {
    const issues = issuesOf({ ...minimal, source: { type: 'generator', template: 'x'.repeat(2 * 1024 * 1024) } }, { connectors: registry });
    expect(issues).toEqual([{ path: 'source.template', message: 'The definition is larger than 1048576 bytes (as JSON); it passes the limit here' }]);
    // Many small values: the same limit, reached inside the array.
    const many = issuesOf({ ...minimal, source: { type: 'generator', rows: Array.from({ length: 200_000 }, () => 'abcdef') } }, { connectors: registry });
    expect(many[0]?.path).toMatch(/^source\.rows\[\d+\]$/);
    expect(validatePipelineDefinition({ ...minimal, source: { type: 'generator', template: 'x'.repeat(1_000_000) } }, { connectors: registry }).ok).toBe(true);
  });

  it('refuses __proto__ keys anywhere, at their own path, and pollutes nothing', () => {
    const top = JSON.parse('{"name":"orders","source":{"type":"generator"},"sink":{"type":"console"},"__proto__":{"polluted":true}}') as unknown;
    expect(issuesOf(top)).toEqual([{ path: '__proto__', message: 'A key named __proto__ is not allowed' }]);
    const inOptions = JSON.parse('{"name":"orders","source":{"type":"generator","options":{"__proto__":{"polluted":true}}},"sink":{"type":"console"}}') as unknown;
    expect(issuesOf(inOptions, { connectors: registry })).toEqual([{ path: 'source.options.__proto__', message: 'A key named __proto__ is not allowed' }]);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('refuses a cyclic value instead of walking it forever', () => {
    const source: Record<string, unknown> = { type: 'generator' };
    source.self = { back: source };
    expect(issuesOf({ ...minimal, source }, { connectors: registry })).toEqual([
      { path: 'source.self.back', message: 'The definition contains a cycle: this field holds an object that contains it' },
    ]);
    // The same object twice is no cycle.
    const shared = { n: 1 };
    expect(validatePipelineDefinition({ ...minimal, source: { type: 'generator', a: shared, b: shared } }, { connectors: registry }).ok).toBe(true);
  });

  it('reports a property that cannot be read instead of throwing', () => {
    const source = { type: 'generator' };
    Object.defineProperty(source, 'secret', {
      enumerable: true,
      get() {
        throw new Error('no access');
      },
    });
    expect(issuesOf({ ...minimal, source })).toEqual([{ path: 'source.secret', message: 'The definition cannot be read here: no access' }]);
  });
});

describe('definition messages', () => {
  it('says a missing sink, source or name is required, at its path', () => {
    expect(issuesOf({ name: 'orders', source: { type: 'generator' } })).toEqual([{ path: 'sink', message: 'sink is required' }]);
    expect(issuesOf({ sink: { type: 'console' } })).toEqual([
      { path: 'name', message: 'name is required' },
      { path: 'source', message: 'source is required' },
    ]);
    // A value of the wrong type is still named as such.
    expect(issuesOf({ ...minimal, sink: 'console' })).toEqual([{ path: 'sink', message: 'Invalid input: expected object, received string' }]);
    expect(issuesOf({ ...minimal, name: 7 })).toEqual([{ path: 'name', message: 'The name must be a string' }]);
  });

  it('reports each unknown top-level key at its own path, with the known keys', () => {
    const issues = issuesOf({ ...minimal, sinks: [], Batch: {} });
    expect(issues.map((i) => i.path)).toEqual(['sinks', 'Batch']);
    expect(issues[0]?.message).toBe("Unknown key 'sinks'; known keys: name, description, source, transforms, sink, batch, retry, batchTimeoutMs, deadLetter, rateLimit, parallelism");
  });
});
