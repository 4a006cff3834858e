/**
 * The pipeline definition: a validated, plain-data (JSON / YAML) description of
 * a pipeline's source, transforms, sink, batching, retry and error handling.
 * `validatePipelineDefinition` reports every field-level problem at once, with
 * paths such as `transforms[1].expression`.
 */
import * as z from 'zod';
import { stageErrorPolicySchema } from '../../transforms/stage-error-policy.js';
import { transformDefinitionSchema } from '../../transforms/transform-definition.js';
import type { ConnectorKind, ConnectorRegistry, ConnectorSchemaIssue } from './connector-registry.js';
import type { DefinitionIssue } from './invalid-pipeline-definition-error.js';
import { formatIssuePath } from './issue-path.js';
import { MAX_PARALLELISM } from './pipeline-tasks.js';
import { checkValueBounds, DEFINITION_BOUNDS } from './value-bounds.js';

/** The dead-letter target types. */
export const DEAD_LETTER_TYPES = ['file', 'postgres', 'kafka'] as const;

const connectorStageSchema = (kind: 'source' | 'sink') =>
  z.looseObject({
    type: z.string({ error: `The ${kind} needs a type (a string such as "kafka")` }).min(1, `The ${kind} type must not be empty`),
    onError: stageErrorPolicySchema,
  });

const millis = (name: string) => z.int(`${name} must be an integer number of milliseconds`);

/**
 * The schema of a pipeline definition, without connector options (see
 * `validatePipelineDefinition` for those and for cross-field rules).
 *
 * @example
 * ```ts
 * const parsed = pipelineDefinitionSchema.safeParse(JSON.parse(text));
 * ```
 */
export const pipelineDefinitionSchema = z.strictObject({
  name: z
    .string({ error: (issue) => (issue.input === undefined ? 'name is required' : 'The name must be a string') })
    .min(3, 'The name must be at least 3 characters')
    .max(100, 'The name must be at most 100 characters')
    .regex(/^[a-zA-Z0-9_-]+$/, 'The name may contain only letters, digits, - and _'),
  description: z.string({ error: 'The description must be a string' }).max(500, 'The description must be at most 500 characters').optional(),
  source: connectorStageSchema('source'),
  transforms: z.array(transformDefinitionSchema).default([]),
  sink: connectorStageSchema('sink'),
  batch: z
    .strictObject({
      size: z.int('batch.size must be an integer').min(1, 'batch.size must be at least 1').max(10_000, 'batch.size must be at most 10000').default(500),
      maxWaitMs: millis('batch.maxWaitMs').min(1, 'batch.maxWaitMs must be at least 1').default(1000),
    })
    .prefault({}),
  retry: z
    .strictObject({
      // 'unlimited' (the default): a retriable failure (an outage) is retried until it ends; a number still gives up after it.
      maxRetries: z
        .union(
          [
            z.literal('unlimited'),
            z.int('retry.maxRetries must be an integer').min(0, 'retry.maxRetries must not be negative').max(100, 'retry.maxRetries must be at most 100'),
          ],
          { error: 'retry.maxRetries must be an integer from 0 to 100 or "unlimited"' },
        )
        .default('unlimited'),
      initialBackoffMs: millis('retry.initialBackoffMs').min(1, 'retry.initialBackoffMs must be at least 1').default(1000),
      maxBackoffMs: millis('retry.maxBackoffMs').min(1, 'retry.maxBackoffMs must be at least 1').default(30_000),
      multiplier: z.number().min(1, 'retry.multiplier must be at least 1').max(10, 'retry.multiplier must be at most 10').default(2),
      jitter: z.number().min(0, 'retry.jitter must be between 0 and 1').max(1, 'retry.jitter must be between 0 and 1').default(0.2),
    })
    .prefault({}),
  batchTimeoutMs: millis('batchTimeoutMs').min(1, 'batchTimeoutMs must be at least 1').default(5 * 60_000),
  deadLetter: z
    .looseObject({
      type: z.enum(DEAD_LETTER_TYPES, { error: `deadLetter.type must be one of ${DEAD_LETTER_TYPES.join(', ')}` }),
    })
    .optional(),
  /**
   * Most records per second the pipeline reads from its source (ingested
   * batches are not limited); `burst` (default one second's worth) is how many
   * may pass at once after a pause. The node shares the limit across nodes
   * through Redis when it has one, else it holds per node.
   */
  rateLimit: z
    .strictObject({
      recordsPerSecond: z
        .number('rateLimit.recordsPerSecond must be a number')
        .positive('rateLimit.recordsPerSecond must be greater than 0')
        .max(1_000_000, 'rateLimit.recordsPerSecond must be at most 1000000'),
      burst: z.int('rateLimit.burst must be an integer').min(1, 'rateLimit.burst must be at least 1').max(1_000_000, 'rateLimit.burst must be at most 1000000').optional(),
    })
    .optional(),
  /**
   * How many tasks run the pipeline (1..64; absent: 1). Each task is its own
   * pipeline entity with its own checkpoint; their sources split the input
   * (Kafka: one consumer group). Only sources that declare `parallelTasks`
   * accept more than 1 (ADR 0013). Left out rather than defaulted, so a
   * definition written before the field existed stays byte for byte the same.
   */
  parallelism: z
    .int('parallelism must be an integer')
    .min(1, 'parallelism must be at least 1')
    .max(MAX_PARALLELISM, `parallelism must be at most ${MAX_PARALLELISM}`)
    .optional(),
});

/**
 * A validated pipeline definition with defaults applied. Plain data: it is
 * stored in the pipeline's events as is.
 */
export type PipelineDefinition = z.output<typeof pipelineDefinitionSchema>;

/** A pipeline definition as written: defaults may be left out. */
export type PipelineDefinitionInput = z.input<typeof pipelineDefinitionSchema>;

/** The outcome of validation: the definition, or every issue found. */
export type PipelineDefinitionValidation =
  | { readonly ok: true; readonly definition: PipelineDefinition }
  | { readonly ok: false; readonly issues: readonly DefinitionIssue[] };

/** What validation may check beyond the definition's own shape. */
export interface ValidatePipelineDefinitionOptions {
  /**
   * Known connector types and their option schemas. Without it, source and
   * sink types are only checked to be non-empty strings.
   */
  readonly connectors?: ConnectorRegistry;
}

/**
 * Validates a pipeline definition (e.g. parsed JSON or YAML), applying
 * defaults. First it bounds the input ({@link DEFINITION_BOUNDS}: at most 64
 * levels deep, 1 MiB as JSON, no cycles, no `__proto__` keys) and answers a
 * value beyond them with that one issue, before any schema walks it. Then it
 * lists every field-level issue: missing fields (`sink is required`), unknown
 * keys (each at its own path), shape and ranges, filter expression
 * syntax with its position, field paths, unknown transform or connector types
 * (with the known ones), connector options, and cross-field rules
 * (`deadLetter` is required when a stage uses `onError: 'dead-letter'`;
 * `retry.initialBackoffMs` must not exceed `retry.maxBackoffMs`; with a
 * registry, `parallelism > 1` only for a source that declares
 * `parallelTasks`).
 *
 * @example
 * ```ts
 * const result = validatePipelineDefinition(JSON.parse(body), { connectors });
 * if (!result.ok) return { status: 400, issues: result.issues };
 * // result.issues: [{ path: 'transforms[1].expression', message: 'Expected a value at position 9, found end of expression' }]
 * ```
 */
export function validatePipelineDefinition(input: unknown, options: ValidatePipelineDefinitionOptions = {}): PipelineDefinitionValidation {
  const outOfBounds = checkValueBounds(input, DEFINITION_BOUNDS, 'The definition');
  if (outOfBounds !== undefined) return { ok: false, issues: [outOfBounds] };
  const parsed = pipelineDefinitionSchema.safeParse(input);
  const issues: DefinitionIssue[] = parsed.success ? [] : parsed.error.issues.flatMap((issue) => definitionIssues(input, issue));
  if (isObject(input)) {
    issues.push(...crossFieldIssues(input));
    if (options.connectors !== undefined) issues.push(...connectorIssues(input, options.connectors));
  }
  if (issues.length > 0 || !parsed.success) return { ok: false, issues };
  return { ok: true, definition: parsed.data };
}

/** Rules that span fields; checked on the raw input so they are reported together with field errors. */
function crossFieldIssues(input: Readonly<Record<string, unknown>>): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  const stages: [string, unknown][] = [
    ['source', input.source],
    ...(Array.isArray(input.transforms) ? input.transforms.map((t, i): [string, unknown] => [`transforms[${i}]`, t]) : []),
    ['sink', input.sink],
  ];
  const deadLettering = stages.filter(([, stage]) => isObject(stage) && stage.onError === 'dead-letter').map(([path]) => path);
  if (deadLettering.length > 0 && input.deadLetter === undefined) {
    issues.push({
      path: 'deadLetter',
      message: `A deadLetter target ({ type: ${DEAD_LETTER_TYPES.map((t) => `'${t}'`).join(' | ')}, ... }) is required because ${deadLettering.join(', ')} use onError 'dead-letter'`,
    });
  }
  const retry = isObject(input.retry) ? input.retry : {};
  const initial = retry.initialBackoffMs ?? 1000;
  const max = retry.maxBackoffMs ?? 30_000;
  if (typeof initial === 'number' && typeof max === 'number' && initial > max) {
    issues.push({ path: 'retry.initialBackoffMs', message: `retry.initialBackoffMs (${initial}) must not exceed retry.maxBackoffMs (${max})` });
  }
  return issues;
}

function connectorIssues(input: Readonly<Record<string, unknown>>, registry: ConnectorRegistry): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  const check = (path: string, kind: ConnectorKind, stage: unknown, requireRegistered: boolean): void => {
    if (!isObject(stage) || typeof stage.type !== 'string' || stage.type === '') return;
    const schema = registry.optionsSchema(kind, stage.type);
    if (schema === undefined) {
      if (requireRegistered) {
        const known = registry.types(kind);
        issues.push({
          path: `${path}.type`,
          message: `Unknown ${kind} type '${stage.type}'; known types: ${known.length === 0 ? '(none registered)' : known.join(', ')}`,
        });
      }
      return;
    }
    const { onError: _onError, ...options } = stage;
    const result = schema['~standard'].validate(options);
    if (result instanceof Promise) {
      issues.push({ path: `${path}.type`, message: `The options schema of ${kind} type '${stage.type}' is asynchronous; only synchronous schemas are supported` });
      return;
    }
    for (const issue of result.issues ?? []) {
      const unknownKeys = unrecognizedKeys(issue);
      if (unknownKeys !== undefined) {
        for (const key of unknownKeys) issues.push({ path: joinPath(path, { ...issue, path: [...segmentsOf(issue), key] }), message: `Unknown key '${key}'` });
        continue;
      }
      const at = joinPath(path, issue);
      issues.push({ path: at, message: requiredOr(issue.message, at, valueAt(options, segmentsOf(issue)) === undefined) });
    }
  };
  check('source', 'source', input.source, true);
  issues.push(...parallelismIssues(input, registry), ...sinkOffsetIssues(input, registry));
  check('sink', 'sink', input.sink, true);
  // Dead-letter types are a closed set the schema already checks; a registry only adds option validation.
  if (isObject(input.deadLetter) && (DEAD_LETTER_TYPES as readonly unknown[]).includes(input.deadLetter.type)) {
    check('deadLetter', 'dead-letter', input.deadLetter, false);
  }
  return issues;
}

/**
 * `parallelism > 1` needs a source that declares `parallelTasks` (a Kafka
 * consumer group splits partitions among the tasks; a file or a generator
 * would be read N times over).
 */
function parallelismIssues(input: Readonly<Record<string, unknown>>, registry: ConnectorRegistry): DefinitionIssue[] {
  const parallelism = input.parallelism;
  if (typeof parallelism !== 'number' || !Number.isInteger(parallelism) || parallelism <= 1) return [];
  const source = input.source;
  if (!isObject(source) || typeof source.type !== 'string' || source.type === '') return [];
  if (registry.optionsSchema('source', source.type) === undefined) return []; // reported as an unknown type
  const declared = registry.sourceCapabilities?.(source.type)?.parallelTasks;
  const answer = typeof declared === 'function' ? declared(source) : declared === true ? true : `a ${source.type} source cannot split its input among tasks`;
  if (answer === true) return [];
  const able = registry.types('source').filter((type) => {
    const capability = registry.sourceCapabilities?.(type)?.parallelTasks;
    return capability !== undefined && capability !== false;
  });
  return [
    {
      path: 'parallelism',
      message: `parallelism ${parallelism} is not possible: ${answer}; only ${able.length === 0 ? '(no registered source)' : able.join(', ')} sources run as several tasks (use parallelism 1 or leave it out)`,
    },
  ];
}

/**
 * A sink that commits the source's offsets in its own transaction (a Kafka
 * sink with `exactlyOnce`) needs a source whose offsets it can commit (a
 * Kafka source): under any other source its first batch failed at run time.
 */
function sinkOffsetIssues(input: Readonly<Record<string, unknown>>, registry: ConnectorRegistry): DefinitionIssue[] {
  const { source, sink } = input;
  if (!isObject(source) || typeof source.type !== 'string' || !isObject(sink) || typeof sink.type !== 'string') return [];
  if (registry.optionsSchema('source', source.type) === undefined) return []; // reported as an unknown type
  const option = registry.sinkCapabilities?.(sink.type)?.commitsSourceOffsets?.(sink);
  if (option === undefined || registry.sourceCapabilities?.(source.type)?.offsetsCommittedBySink === true) return [];
  const able = registry.types('source').filter((type) => registry.sourceCapabilities?.(type)?.offsetsCommittedBySink === true);
  return [
    {
      path: `sink.${option}`,
      message: `${option} commits the source's offsets in the ${sink.type} sink's transaction, and a ${source.type} source has none it can commit; only ${able.length === 0 ? '(no registered source)' : able.join(', ')} sources do (set ${option}: false, or read from one of them)`,
    },
  ];
}

const TOP_LEVEL_KEYS = Object.keys(pipelineDefinitionSchema.shape);

/**
 * A schema issue in the words of a definition: an unknown key is reported at
 * its own path (one issue per key), and a missing field as `<path> is
 * required` instead of the schema's type complaint about `undefined`.
 */
function definitionIssues(input: unknown, issue: z.core.$ZodIssue): DefinitionIssue[] {
  if (issue.code === 'unrecognized_keys') {
    const known = issue.path.length === 0 ? `; known keys: ${TOP_LEVEL_KEYS.join(', ')}` : '';
    return issue.keys.map((key) => ({ path: formatIssuePath([...issue.path, key]), message: `Unknown key '${key}'${known}` }));
  }
  const path = formatIssuePath(issue.path);
  return [{ path, message: requiredOr(issue.message, path, issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) }];
}

/**
 * zod's default complaint about a missing field ("Invalid input: expected
 * object, received undefined") becomes `<path> is required`; a schema's own
 * message is kept.
 */
function requiredOr(message: string, path: string, missing: boolean): string {
  return missing && path !== '' && message.startsWith('Invalid input: expected ') ? `${path} is required` : message;
}

/** The value at `path` in `input`, reading own properties only; undefined when any step is missing. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Readonly<Record<PropertyKey, unknown>>)[segment];
  }
  return current;
}

/** The keys of a zod "unrecognized keys" issue (Standard Schema issues of zod carry its code and keys). */
function unrecognizedKeys(issue: ConnectorSchemaIssue): readonly string[] | undefined {
  const { code, keys } = issue as { code?: unknown; keys?: unknown };
  return code === 'unrecognized_keys' && Array.isArray(keys) && keys.every((key) => typeof key === 'string') ? keys : undefined;
}

function segmentsOf(issue: ConnectorSchemaIssue): PropertyKey[] {
  return (issue.path ?? []).map((segment) => (typeof segment === 'object' ? segment.key : segment));
}

function joinPath(prefix: string, issue: ConnectorSchemaIssue): string {
  const rest = formatIssuePath(segmentsOf(issue));
  return rest === '' ? prefix : rest.startsWith('[') ? `${prefix}${rest}` : `${prefix}.${rest}`;
}

function isObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
