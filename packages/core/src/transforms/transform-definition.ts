/**
 * The definition of a transform stage as it appears in a pipeline definition:
 * a tagged union on `type`, one schema per transform.
 */
import * as z from 'zod';
import { aggregateDefinitionSchema } from './aggregate/tumbling-window-aggregate.js';
import { enrichDefinitionSchema } from './enrich/enrich-transform.js';
import { filterDefinitionSchema } from './filter/filter-transform.js';
import { flatMapDefinitionSchema } from './flat-map/flat-map-transform.js';
import { jsonParseDefinitionSchema } from './json-parse/json-parse-transform.js';
import { mapDefinitionSchema } from './map/map-transform.js';
import { prometheusDefinitionSchema } from './prometheus/prometheus-transform.js';

/** The transform types DataFlow ships. */
export const TRANSFORM_TYPES = ['filter', 'map', 'flat-map', 'aggregate', 'enrich', 'json-parse', 'prometheus'] as const;

/** One of `TRANSFORM_TYPES`. */
export type TransformType = (typeof TRANSFORM_TYPES)[number];

/**
 * Schema of one transform stage; an unknown `type` is reported with the list
 * of known ones.
 *
 * @example
 * ```ts
 * transformDefinitionSchema.parse({ type: 'filter', expression: 'ok == true' });
 * ```
 */
export const transformDefinitionSchema = z.discriminatedUnion(
  'type',
  [
    filterDefinitionSchema,
    mapDefinitionSchema,
    flatMapDefinitionSchema,
    aggregateDefinitionSchema,
    enrichDefinitionSchema,
    jsonParseDefinitionSchema,
    prometheusDefinitionSchema,
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `Unknown transform type; known types: ${TRANSFORM_TYPES.join(', ')}`
        : undefined,
  },
);

/** A validated transform stage definition (defaults applied). */
export type TransformDefinition = z.output<typeof transformDefinitionSchema>;

/** A transform stage definition as written (defaults optional). */
export type TransformDefinitionInput = z.input<typeof transformDefinitionSchema>;
