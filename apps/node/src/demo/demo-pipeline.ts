/**
 * The demo pipeline `npm start` runs: generated sensor readings at 2000
 * records/s (unlimited), kept when above freezing, reshaped, then printed as
 * one line per batch and appended exactly once to `<dataDir>/demo-output.jsonl`
 * (rotated at 16 MB) through a tee sink.
 */
import type { PipelineDefinitionInput } from '@dataflow/core';
import { join } from 'node:path';

/** The id and name of the demo pipeline. */
export const DEMO_PIPELINE_ID = 'demo';

/** Where the demo writes its records, under the node's data directory. */
export function demoOutputPath(dataDir: string): string {
  return join(dataDir, 'demo-output.jsonl');
}

/**
 * The demo's definition.
 *
 * @example
 * ```ts
 * await node.createPipeline(demoPipeline('/var/lib/dataflow'), { pipelineId: DEMO_PIPELINE_ID });
 * ```
 */
export function demoPipeline(dataDir: string): PipelineDefinitionInput {
  return {
    name: 'demo',
    description: 'Generated sensor readings above freezing, reshaped, printed per batch and written once to a JSONL file',
    source: {
      type: 'generator',
      rate: 2000,
      seed: 7,
      fields: {
        id: { kind: 'sequence', start: 1 },
        sensor: { kind: 'pick', values: ['boiler', 'attic', 'garage', 'cellar'] },
        temperature: { kind: 'float', min: -5, max: 35, decimals: 1 },
      },
    },
    transforms: [
      { type: 'filter', expression: 'temperature > 0' },
      { type: 'map', rename: [{ from: 'temperature', to: 'celsius' }], set: [{ to: 'unit', value: 'C' }] },
    ],
    sink: {
      type: 'tee',
      sinks: [
        { type: 'console', maxPreviewChars: 80 },
        { type: 'file', path: demoOutputPath(dataDir), format: 'jsonl', maxBytes: 16 * 1024 * 1024 },
      ],
    },
    batch: { size: 500, maxWaitMs: 500 },
  };
}
