/**
 * Typed builders for pipeline definitions in TypeScript: `definePipeline`
 * validates at once, and one helper per transform keeps stage definitions
 * short. They produce the same plain data a JSON or YAML definition holds.
 */
import type * as z from 'zod';
import type { aggregateDefinitionSchema } from '../../transforms/aggregate/tumbling-window-aggregate.js';
import type { enrichDefinitionSchema } from '../../transforms/enrich/enrich-transform.js';
import type { filterDefinitionSchema } from '../../transforms/filter/filter-transform.js';
import type { flatMapDefinitionSchema } from '../../transforms/flat-map/flat-map-transform.js';
import type { jsonParseDefinitionSchema } from '../../transforms/json-parse/json-parse-transform.js';
import type { mapDefinitionSchema } from '../../transforms/map/map-transform.js';
import type { StageErrorPolicy } from '../../transforms/stage-error-policy.js';
import { InvalidPipelineDefinitionError } from './invalid-pipeline-definition-error.js';
import {
  validatePipelineDefinition,
  type PipelineDefinition,
  type PipelineDefinitionInput,
  type ValidatePipelineDefinitionOptions,
} from './pipeline-definition.js';

/**
 * Validates a definition written in TypeScript and returns it with defaults applied.
 *
 * @throws InvalidPipelineDefinitionError listing every issue.
 * @example
 * ```ts
 * const orders = definePipeline({
 *   name: 'orders-enriched',
 *   source: { type: 'kafka', topic: 'orders' },
 *   transforms: [
 *     jsonParse({ field: 'value', onError: 'dead-letter' }),
 *     filter('status == "paid" AND total > 0'),
 *     map({ rename: [{ from: 'cust', to: 'customerId' }] }),
 *   ],
 *   sink: { type: 'file', path: 'out/orders.jsonl' },
 *   deadLetter: { type: 'kafka', topic: 'dead-letter-queue' },
 * });
 * ```
 */
export function definePipeline(input: PipelineDefinitionInput, options: ValidatePipelineDefinitionOptions = {}): PipelineDefinition {
  const result = validatePipelineDefinition(input, options);
  if (!result.ok) throw new InvalidPipelineDefinitionError(result.issues);
  return result.definition;
}

type StageOptions<Schema extends z.ZodType> = Omit<z.input<Schema>, 'type'>;

/** A filter stage definition as written. */
export type FilterDefinitionInput = z.input<typeof filterDefinitionSchema>;
/** A map stage definition as written. */
export type MapDefinitionInput = z.input<typeof mapDefinitionSchema>;
/** A flat-map stage definition as written. */
export type FlatMapDefinitionInput = z.input<typeof flatMapDefinitionSchema>;
/** An aggregate stage definition as written. */
export type AggregateDefinitionInput = z.input<typeof aggregateDefinitionSchema>;
/** An enrich stage definition as written. */
export type EnrichDefinitionInput = z.input<typeof enrichDefinitionSchema>;
/** A json-parse stage definition as written. */
export type JsonParseDefinitionInput = z.input<typeof jsonParseDefinitionSchema>;

/**
 * A filter stage: keeps records for which `expression` is true.
 *
 * @example
 * ```ts
 * filter('status == "ok" AND value > 3'); // { type: 'filter', expression: 'status == "ok" AND value > 3' }
 * ```
 */
export function filter(expression: string, options: { readonly onError?: StageErrorPolicy } = {}): FilterDefinitionInput {
  return { type: 'filter', expression, ...options };
}

/**
 * A map stage: renames, sets and drops fields.
 *
 * @example
 * ```ts
 * map({ rename: [{ from: 'ts', to: 'timestamp' }], set: [{ to: 'source', value: 'web' }], drop: ['debug'] });
 * ```
 */
export function map(options: StageOptions<typeof mapDefinitionSchema>): MapDefinitionInput {
  return { type: 'map', ...options };
}

/**
 * A flat-map stage: one output record per element of an array (or delimited string) field.
 *
 * @example
 * ```ts
 * flatMap({ field: 'tags', delimiter: ',', target: 'tag' });
 * ```
 */
export function flatMap(options: StageOptions<typeof flatMapDefinitionSchema>): FlatMapDefinitionInput {
  return { type: 'flat-map', ...options };
}

/**
 * A tumbling-window aggregate stage.
 *
 * @example
 * ```ts
 * aggregate({ groupBy: ['host'], windowMs: 60_000, timestampField: 'ts', aggregations: [{ op: 'count', as: 'requests' }] });
 * ```
 */
export function aggregate(options: StageOptions<typeof aggregateDefinitionSchema>): AggregateDefinitionInput {
  return { type: 'aggregate', ...options };
}

/**
 * An enrich stage reading the named lookup source.
 *
 * @example
 * ```ts
 * enrich({ lookup: 'customers', key: 'customerId', target: 'customer', onMiss: 'drop' });
 * ```
 */
export function enrich(options: StageOptions<typeof enrichDefinitionSchema>): EnrichDefinitionInput {
  return { type: 'enrich', ...options };
}

/**
 * A json-parse stage.
 *
 * @example
 * ```ts
 * jsonParse({ field: 'line', onError: 'dead-letter' });
 * ```
 */
export function jsonParse(options: StageOptions<typeof jsonParseDefinitionSchema>): JsonParseDefinitionInput {
  return { type: 'json-parse', ...options };
}
