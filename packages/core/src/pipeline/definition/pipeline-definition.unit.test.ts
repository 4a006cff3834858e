import * as z from 'zod';
import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { connectorRegistry } from './connector-registry.js';
import { aggregate, definePipeline, enrich, filter, flatMap, jsonParse, map } from './define-pipeline.js';
import { InvalidPipelineDefinitionError } from './invalid-pipeline-definition-error.js';
import { validatePipelineDefinition } from './pipeline-definition.js';

const minimal = { name: 'orders', source: { type: 'kafka', topic: 'orders' }, sink: { type: 'console' } };

function issuesOf(input: unknown, options: Parameters<typeof validatePipelineDefinition>[1] = {}) {
  const result = validatePipelineDefinition(input, options);
  if (result.ok) throw new Error('expected the definition to be invalid');
  return result.issues;
}

describe('pipeline definitions: defaults', () => {
  it('applies every default to a minimal definition and keeps connector options as written', () => {
    const result = validatePipelineDefinition(minimal);
    expect(result).toEqual({
      ok: true,
      definition: {
        name: 'orders',
        source: { type: 'kafka', topic: 'orders', onError: 'fail' },
        transforms: [],
        sink: { type: 'console', onError: 'fail' },
        batch: { size: 500, maxWaitMs: 1000 },
        retry: { maxRetries: 'unlimited', initialBackoffMs: 1000, maxBackoffMs: 30_000, multiplier: 2, jitter: 0.2 },
        batchTimeoutMs: 300_000,
      },
    });
  });

  it('keeps given values, and the definition survives a JSON round trip unchanged', () => {
    const definition = definePipeline({
      ...minimal,
      description: 'Paid orders',
      transforms: [
        jsonParse({ field: 'value', onError: 'dead-letter' }),
        filter('status == "paid"', { onError: 'skip' }),
        map({ rename: [{ from: 'cust', to: 'customerId' }], keepUnmapped: false }),
        flatMap({ field: 'items', target: 'item' }),
        enrich({ lookup: 'customers', key: 'customerId', target: 'customer', onMiss: 'drop' }),
        aggregate({ windowMs: 60_000, aggregations: [{ op: 'count', as: 'n' }] }),
      ],
      batch: { size: 10_000, maxWaitMs: 50 },
      retry: { maxRetries: 0, jitter: 0 },
      batchTimeoutMs: 1,
      deadLetter: { type: 'kafka', topic: 'dead-letter-queue' },
    });
    expect(definition.transforms.map((t) => [t.type, t.onError])).toEqual([
      ['json-parse', 'dead-letter'],
      ['filter', 'skip'],
      ['map', 'fail'],
      ['flat-map', 'fail'],
      ['enrich', 'fail'],
      ['aggregate', 'fail'],
    ]);
    expect(definition.retry).toEqual({ maxRetries: 0, initialBackoffMs: 1000, maxBackoffMs: 30_000, multiplier: 2, jitter: 0 });
    expect(validatePipelineDefinition(JSON.parse(JSON.stringify(definition)))).toEqual({ ok: true, definition });
  });
});

describe('pipeline definitions: field rules', () => {
  it.each([
    ['name too short', { name: 'ab' }, 'name', 'The name must be at least 3 characters'],
    ['name too long', { name: 'a'.repeat(101) }, 'name', 'The name must be at most 100 characters'],
    ['name with a space', { name: 'my pipeline' }, 'name', 'The name may contain only letters, digits, - and _'],
    ['name not a string', { name: 42 }, 'name', 'The name must be a string'],
    ['description too long', { description: 'x'.repeat(501) }, 'description', 'The description must be at most 500 characters'],
    ['source without type', { source: { topic: 'x' } }, 'source.type', 'The source needs a type (a string such as "kafka")'],
    ['sink with an empty type', { sink: { type: '' } }, 'sink.type', 'The sink type must not be empty'],
    ['unknown onError', { sink: { type: 'console', onError: 'ignore' } }, 'sink.onError', "onError must be one of 'skip', 'fail', 'dead-letter'"],
    ['batch size 0', { batch: { size: 0 } }, 'batch.size', 'batch.size must be at least 1'],
    ['batch size 10001', { batch: { size: 10_001 } }, 'batch.size', 'batch.size must be at most 10000'],
    ['fractional batch size', { batch: { size: 1.5 } }, 'batch.size', 'batch.size must be an integer'],
    ['maxWaitMs 0', { batch: { maxWaitMs: 0 } }, 'batch.maxWaitMs', 'batch.maxWaitMs must be at least 1'],
    ['negative retries', { retry: { maxRetries: -1 } }, 'retry.maxRetries', 'retry.maxRetries must not be negative'],
    ['retries above 100', { retry: { maxRetries: 101 } }, 'retry.maxRetries', 'retry.maxRetries must be at most 100'],
    ['retries neither a number nor unlimited', { retry: { maxRetries: 'forever' } }, 'retry.maxRetries', 'retry.maxRetries must be an integer from 0 to 100 or "unlimited"'],
    ['multiplier below 1', { retry: { multiplier: 0.5 } }, 'retry.multiplier', 'retry.multiplier must be at least 1'],
    ['jitter above 1', { retry: { jitter: 1.5 } }, 'retry.jitter', 'retry.jitter must be between 0 and 1'],
    ['initial backoff above max', { retry: { initialBackoffMs: 40_000 } }, 'retry.initialBackoffMs', 'retry.initialBackoffMs (40000) must not exceed retry.maxBackoffMs (30000)'],
    ['batch timeout 0', { batchTimeoutMs: 0 }, 'batchTimeoutMs', 'batchTimeoutMs must be at least 1'],
    ['unknown dead-letter type', { deadLetter: { type: 's3' } }, 'deadLetter.type', 'deadLetter.type must be one of file, postgres, kafka'],
    [
      'misspelt key',
      { transfroms: [] },
      'transfroms',
      "Unknown key 'transfroms'; known keys: name, description, source, transforms, sink, batch, retry, batchTimeoutMs, deadLetter, rateLimit, parallelism",
    ],
    ['unknown batch key', { batch: { sizes: 3 } }, 'batch.sizes', "Unknown key 'sizes'"],
    ['rate limit of 0 records/s', { rateLimit: { recordsPerSecond: 0 } }, 'rateLimit.recordsPerSecond', 'rateLimit.recordsPerSecond must be greater than 0'],
    ['rate limit not a number', { rateLimit: { recordsPerSecond: 'fast' } }, 'rateLimit.recordsPerSecond', 'rateLimit.recordsPerSecond must be a number'],
    ['rate limit burst 0', { rateLimit: { recordsPerSecond: 10, burst: 0 } }, 'rateLimit.burst', 'rateLimit.burst must be at least 1'],
    ['fractional rate limit burst', { rateLimit: { recordsPerSecond: 10, burst: 2.5 } }, 'rateLimit.burst', 'rateLimit.burst must be an integer'],
    ['unknown rate limit key', { rateLimit: { recordsPerSecond: 10, perSecond: 3 } }, 'rateLimit.perSecond', "Unknown key 'perSecond'"],
    ['transforms not an array', { transforms: {} }, 'transforms', 'Invalid input: expected array, received object'],
  ])('%s', (_, change, path, message) => {
    expect(issuesOf({ ...minimal, ...change })).toEqual([{ path, message }]);
  });

  it('accepts the boundaries', () => {
    for (const change of [{ name: 'a-_' }, { name: 'A'.repeat(100) }, { description: 'x'.repeat(500) }, { batch: { size: 1 } }, { retry: { jitter: 1, multiplier: 1 } }, { retry: { maxRetries: 'unlimited' } }, { retry: { maxRetries: 100 } }, { retry: { maxRetries: 5 } }, { rateLimit: { recordsPerSecond: 0.5 } }, { rateLimit: { recordsPerSecond: 1_000_000, burst: 1 } }]) {
      expect(validatePipelineDefinition({ ...minimal, ...change }).ok).toBe(true);
    }
  });

  it('rejects input that is not an object', () => {
    expect(issuesOf('name: x')).toEqual([{ path: '', message: 'Invalid input: expected object, received string' }]);
  });

  it('requires a dead-letter target when any stage dead-letters, naming the stages', () => {
    const input = {
      ...minimal,
      source: { type: 'kafka', onError: 'dead-letter' },
      transforms: [{ type: 'json-parse', field: 'line', onError: 'dead-letter' }],
    };
    expect(issuesOf(input)).toEqual([
      { path: 'deadLetter', message: "A deadLetter target ({ type: 'file' | 'postgres' | 'kafka', ... }) is required because source, transforms[0] use onError 'dead-letter'" },
    ]);
    expect(validatePipelineDefinition({ ...input, deadLetter: { type: 'file', path: 'dlq.jsonl' } }).ok).toBe(true);
  });
});

describe('pipeline definitions: transform rules', () => {
  it.each([
    ['unknown type', { type: 'sort' }, 'transforms[0].type', 'Unknown transform type; known types: filter, map, flat-map, aggregate, enrich, json-parse, prometheus'],
    ['filter without expression', { type: 'filter' }, 'transforms[0].expression', 'Expected a filter expression (a string)'],
    ['filter with a syntax error', { type: 'filter', expression: 'a == 1 AND' }, 'transforms[0].expression', 'Expected a value (a field, a literal or a parenthesis) at position 10, found end of expression'],
    ['filter with an unknown option', { type: 'filter', expression: 'a', limit: 3 }, 'transforms[0].limit', "Unknown key 'limit'"],
    ['map with a bad path', { type: 'map', drop: ['a..b'] }, 'transforms[0].drop[0]', "Invalid field path: Expected a field name after '.' at position 2, found '.'"],
    ['map set with value and from', { type: 'map', set: [{ to: 'x', value: 1, from: 'y' }] }, 'transforms[0].set[0]', "Give exactly one of 'value' (a constant) or 'from' (a field path to copy)"],
    ['map set with neither', { type: 'map', set: [{ to: 'x' }] }, 'transforms[0].set[0]', "Give exactly one of 'value' (a constant) or 'from' (a field path to copy)"],
    ['flat-map with an empty delimiter', { type: 'flat-map', field: 'a', delimiter: '' }, 'transforms[0].delimiter', 'The delimiter must not be empty'],
    ['aggregate without aggregations', { type: 'aggregate', windowMs: 10, aggregations: [] }, 'transforms[0].aggregations', 'Give at least one aggregation'],
    ['aggregate sum without field', { type: 'aggregate', windowMs: 10, aggregations: [{ op: 'sum', as: 's' }] }, 'transforms[0].aggregations[0].field', 'The sum aggregation needs a field'],
    ['aggregate unknown op', { type: 'aggregate', windowMs: 10, aggregations: [{ op: 'median', field: 'v', as: 'm' }] }, 'transforms[0].aggregations[0].op', "op must be one of 'count', 'sum', 'avg', 'min', 'max', 'first', 'last', 'collect'"],
    ['aggregate window 0', { type: 'aggregate', windowMs: 0, aggregations: [{ op: 'count', as: 'n' }] }, 'transforms[0].windowMs', 'windowMs must be at least 1'],
    ['enrich unknown miss policy', { type: 'enrich', lookup: 'l', key: 'k', target: 't', onMiss: 'ignore' }, 'transforms[0].onMiss', "onMiss must be one of 'keep', 'drop', 'fail'"],
    ['enrich without lookup name', { type: 'enrich', lookup: '', key: 'k', target: 't' }, 'transforms[0].lookup', 'Name the lookup source'],
  ])('%s', (_, transform, path, message) => {
    expect(issuesOf({ ...minimal, transforms: [transform] })).toEqual([{ path, message }]);
  });
});

describe('pipeline definitions: every issue at once', () => {
  it('lists all field-level problems of a definition in one result', () => {
    const issues = issuesOf({
      name: 'x y',
      source: {},
      transforms: [
        { type: 'filter', expression: 'status == "ok"' },
        { type: 'filter', expression: 'value >> 3' },
        { type: 'nope' },
        { type: 'json-parse', field: 'line', onError: 'dead-letter' },
      ],
      sink: { type: 'console', onError: 'explode' },
      batch: { size: 0 },
      retry: { initialBackoffMs: 5000, maxBackoffMs: 10 },
    });
    expect(issues.map((i) => i.path)).toEqual([
      'name',
      'source.type',
      'transforms[1].expression',
      'transforms[2].type',
      'sink.onError',
      'batch.size',
      'deadLetter',
      'retry.initialBackoffMs',
    ]);
    expect(issues[2]?.message).toBe("Expected a value (a field, a literal or a parenthesis) at position 7, found '>'");
  });

  it('definePipeline throws one non-retriable error carrying every issue', () => {
    let caught: unknown;
    try {
      definePipeline({ ...minimal, name: '!', batch: { size: 0 } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidPipelineDefinitionError);
    expect(isDataflowError(caught, 'pipeline/invalid-definition')).toBe(true);
    const error = caught as InvalidPipelineDefinitionError;
    expect(error.retriable).toBe(false);
    expect(error.issues.map((i) => i.path)).toEqual(['name', 'name', 'batch.size']);
    expect(error.message).toBe(
      'Invalid pipeline definition (3 issues): name: The name must be at least 3 characters; name: The name may contain only letters, digits, - and _; batch.size: batch.size must be at least 1',
    );
  });
});

describe('pipeline definitions: connector registry', () => {
  const registry = connectorRegistry({
    sources: { kafka: z.strictObject({ type: z.literal('kafka'), topic: z.string().min(1) }), generator: z.looseObject({ type: z.literal('generator') }) },
    sinks: { console: z.strictObject({ type: z.literal('console') }) },
    deadLetters: { file: z.strictObject({ type: z.literal('file'), path: z.string() }) },
  });

  it('validates connector options with the connector schema, without onError', () => {
    expect(validatePipelineDefinition({ ...minimal, sink: { type: 'console', onError: 'skip' } }, { connectors: registry }).ok).toBe(true);
    expect(issuesOf({ ...minimal, source: { type: 'kafka', topic: '', extra: 1 } }, { connectors: registry })).toEqual([
      { path: 'source.topic', message: 'Too small: expected string to have >=1 characters' },
      { path: 'source.extra', message: "Unknown key 'extra'" },
    ]);
  });

  it('reports unknown source and sink types with the known ones', () => {
    expect(issuesOf({ ...minimal, source: { type: 'mqtt' }, sink: { type: 'elastic' } }, { connectors: registry })).toEqual([
      { path: 'source.type', message: "Unknown source type 'mqtt'; known types: generator, kafka" },
      { path: 'sink.type', message: "Unknown sink type 'elastic'; known types: console" },
    ]);
  });

  it('validates dead-letter options when the registry knows the type, and accepts other built-in types', () => {
    expect(issuesOf({ ...minimal, deadLetter: { type: 'file' } }, { connectors: registry })).toEqual([
      { path: 'deadLetter.path', message: 'deadLetter.path is required' },
    ]);
    expect(validatePipelineDefinition({ ...minimal, deadLetter: { type: 'postgres', table: 'dlq' } }, { connectors: registry }).ok).toBe(true);
  });

  it('reports an asynchronous options schema instead of skipping it', () => {
    const asyncRegistry = connectorRegistry({ sources: { kafka: z.object({ type: z.string() }).refine(async () => Promise.resolve(true)) }, sinks: { console: z.any() } });
    expect(issuesOf(minimal, { connectors: asyncRegistry })).toEqual([
      { path: 'source.type', message: "The options schema of source type 'kafka' is asynchronous; only synchronous schemas are supported" },
    ]);
  });
});
