/**
 * Builds the runnable transform for a validated transform definition.
 */
import { createTumblingWindowAggregate } from './aggregate/tumbling-window-aggregate.js';
import { createEnrichTransform } from './enrich/enrich-transform.js';
import type { LookupSource } from './enrich/lookup-source.js';
import { createFilterTransform } from './filter/filter-transform.js';
import { createFlatMapTransform } from './flat-map/flat-map-transform.js';
import { createJsonParseTransform } from './json-parse/json-parse-transform.js';
import { createMapTransform } from './map/map-transform.js';
import { createPrometheusTransform } from './prometheus/prometheus-transform.js';
import { TransformConfigurationError } from './transform-errors.js';
import type { TransformDefinition } from './transform-definition.js';
import type { Transform } from './transform.js';

/** What `createTransform` needs besides the definition. */
export interface CreateTransformOptions {
  /** The stage name failures carry, e.g. `transforms[2]` (default: the transform type). */
  readonly stage?: string;
  /** Lookup sources by name, for enrich stages. */
  readonly lookups?: Readonly<Record<string, LookupSource>>;
}

/**
 * Creates the transform a validated definition describes.
 *
 * @throws TransformConfigurationError when an enrich stage names a lookup not in `options.lookups`.
 * @example
 * ```ts
 * const definition = definePipeline(input);
 * const lookups = { customers: new InMemoryLookupSource({ c1: { name: 'Ada' } }) };
 * const stages = definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]`, lookups }));
 * ```
 */
export function createTransform(definition: TransformDefinition, options: CreateTransformOptions = {}): Transform {
  const stage = options.stage ?? definition.type;
  switch (definition.type) {
    case 'filter':
      return createFilterTransform(definition, stage);
    case 'map':
      return createMapTransform(definition, stage);
    case 'flat-map':
      return createFlatMapTransform(definition, stage);
    case 'aggregate':
      return createTumblingWindowAggregate(definition, stage);
    case 'json-parse':
      return createJsonParseTransform(definition, stage);
    case 'prometheus':
      return createPrometheusTransform(definition, stage);
    case 'enrich': {
      const lookups = options.lookups ?? {};
      if (!Object.hasOwn(lookups, definition.lookup)) {
        const provided = Object.keys(lookups);
        throw new TransformConfigurationError(
          `Unknown lookup ${definition.lookup} in stage ${stage}; provided: ${provided.length === 0 ? '(none)' : provided.join(', ')}`,
        );
      }
      return createEnrichTransform(definition, stage, lookups[definition.lookup] as LookupSource);
    }
  }
}
