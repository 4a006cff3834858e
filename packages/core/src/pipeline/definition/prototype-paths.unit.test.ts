/**
 * Field paths are data too: a defined map stage that renames to, sets or
 * drops `__proto__` or `constructor.prototype` paths builds own fields of the
 * output record and never changes a prototype (checked end to end, from the
 * definition to the transform it creates).
 */
import { describe, expect, it } from 'vitest';
import type { DataRecord } from '../../connector/data-record.js';
import { createTransform } from '../../transforms/create-transform.js';
import { definePipeline, map } from './define-pipeline.js';

async function runMap(stage: ReturnType<typeof map>, records: readonly DataRecord[]): Promise<readonly DataRecord[]> {
  const definition = definePipeline({ name: 'proto-paths', source: { type: 'generator' }, transforms: [stage], sink: { type: 'console' } });
  const [transform] = definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]` }));
  if (transform?.kind !== 'stateless') throw new Error('expected a stateless map transform');
  const result = await transform.apply(records, { now: 0 });
  expect(result.failures).toEqual([]);
  return result.records;
}

describe('map stages on prototype-like paths', () => {
  it('sets and renames into __proto__ and constructor.prototype as own data, polluting nothing', async () => {
    const [out] = await runMap(
      map({
        rename: [{ from: 'a', to: '__proto__.polluted' }],
        set: [
          { to: 'constructor.prototype.polluted', value: true },
          { to: '["toString"]', value: 'not a function' },
        ],
      }),
      [{ a: 1 }],
    );
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out as object)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":true}},"toString":"not a function"}');
  });

  it('reads, moves and drops an own __proto__ field that came from JSON', async () => {
    const input = JSON.parse('{"__proto__": {"admin": true}, "keep": 1}') as DataRecord;
    const [moved] = await runMap(map({ rename: [{ from: '__proto__.admin', to: 'admin' }], drop: ['__proto__'] }), [input]);
    expect(moved).toEqual({ keep: 1, admin: true });
    expect(Object.hasOwn(moved as object, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(moved)).toBe(Object.prototype);
    // Without an own field, __proto__ and constructor read as missing, not as Object.prototype members.
    const [untouched] = await runMap(map({ set: [{ to: 'copied', from: '__proto__' }, { to: 'ctor', from: 'constructor' }] }), [{ x: 1 }]);
    expect(untouched).toEqual({ x: 1 });
  });
});
