import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../errors/dataflow-error.js';
import { JsonSerializer } from '../persistence/serialization/json-serializer.js';
import { emptyCoordinatorState, type RegisteredPipeline } from './coordinator-model.js';
import { fromStoredCoordinatorState, toStoredCoordinatorState } from './coordinator-snapshot.js';

const registered = (id: string): RegisteredPipeline => ({
  pipelineId: id,
  name: `name-${id}`,
  status: 'running',
  sourceType: 'generator',
  sinkType: 'file',
  totalRecords: 1,
  failedRecords: 0,
  registeredAt: 1,
  updatedAt: 1,
});

describe('coordinator snapshot codec', () => {
  it('round-trips the maps through the JSON serializer as entries, ids such as __proto__ included', () => {
    const state = { pipelines: new Map([['__proto__', registered('__proto__')], ['constructor', registered('constructor')]]), resources: new Map() };
    const json = new JsonSerializer();
    const manifest = { eventType: 'snapshot', schemaVersion: 2 };
    const bytes = json.serialize(toStoredCoordinatorState(state), manifest);
    expect(JSON.parse(new TextDecoder().decode(bytes))).toMatchObject({ pipelines: [['__proto__', { pipelineId: '__proto__' }], ['constructor', {}]], resources: [] });
    const back = fromStoredCoordinatorState(json.deserialize(bytes, manifest), 2);
    expect([...back.pipelines.keys()]).toEqual(['__proto__', 'constructor']);
    expect(toStoredCoordinatorState(emptyCoordinatorState)).toEqual({ pipelines: [], resources: [] });
  });

  it('reads the version-1 shape, keeping an own __proto__ key as an id without touching any prototype', () => {
    const pipelines = JSON.parse('{"__proto__": {"pipelineId": "__proto__"}, "a": {"pipelineId": "a"}}') as Record<string, unknown>;
    const state = fromStoredCoordinatorState({ pipelines }, 1);
    expect([...state.pipelines.keys()]).toEqual(['__proto__', 'a']);
    expect(state.resources.size).toBe(0);
    expect(Object.getPrototypeOf(state.pipelines)).toBe(Map.prototype);
  });

  it.each([
    ['not an object', 'x', 2],
    ['entries that are not pairs', { pipelines: [['a']], resources: [] }, 2],
    ['an id that is not a string', { pipelines: [[1, {}]], resources: [] }, 2],
    ['objects under version 2', { pipelines: {}, resources: {} }, 2],
    ['a version-1 pipeline that is not an object', { pipelines: { a: 3 }, resources: {} }, 1],
  ])('refuses %s with a serialization error', (_what, stored, version) => {
    let caught: unknown;
    try {
      fromStoredCoordinatorState(stored, version);
    } catch (error) {
      caught = error;
    }
    expect(isDataflowError(caught, 'serialization/failed')).toBe(true);
  });
});
