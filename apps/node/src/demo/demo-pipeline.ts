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

/**
 * The path of the first file sink in a stored definition (directly, or inside
 * a tee): the output a pipeline actually writes, which with a shared journal
 * may lie under another node's data directory.
 *
 * @example
 * ```ts
 * fileSinkPath(recovered.definition); // '/var/lib/dataflow/demo-output.jsonl'
 * ```
 */
export function fileSinkPath(definition: unknown): string | undefined {
  const sink = (definition as { sink?: unknown } | undefined)?.sink;
  return sinkPath(sink);
}

function sinkPath(sink: unknown): string | undefined {
  if (typeof sink !== 'object' || sink === null) return undefined;
  const { type, path, sinks } = sink as { type?: unknown; path?: unknown; sinks?: unknown };
  if (type === 'file' && typeof path === 'string') return path;
  if (type === 'tee' && Array.isArray(sinks)) {
    for (const inner of sinks) {
      const found = sinkPath(inner);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
