/**
 * Helpers of the metrics tests and benchmark: a node on an embedded PGlite
 * journal in a temporary directory, a sink stream that keeps nothing, and a
 * parser of the Prometheus text exposition that a scrape returns.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ConnectorFactory, PersistencePlugin } from '@dataflow/core';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode, type NodeConfig } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { openNodeStore } from '../node/node-persistence.js';

/** A logger that drops everything (the tests read metrics, not logs). */
export const silentLogger: NodeLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** A sink stream that counts and drops what the console sink writes. */
export class NullStream extends Writable {
  lines = 0;
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    for (const byte of chunk) if (byte === 10) this.lines++;
    done();
  }
}

/** A node on PGlite in a fresh temporary directory; `close` shuts it down and removes the directory. */
export interface TempNode {
  readonly node: DataflowNode;
  readonly dir: string;
  close(): Promise<void>;
}

/**
 * Starts a node on an embedded PGlite journal in a new temporary directory.
 * `wrap` may replace the opened plugin (to inject journal faults); the store
 * is then closed by `close`.
 */
export async function startTempNode(
  options: { readonly connectors?: ConnectorFactory; readonly logger?: NodeLogger; readonly wrap?: (plugin: PersistencePlugin) => PersistencePlugin } = {},
  overrides: Partial<NodeConfig> = {},
): Promise<TempNode> {
  const dir = await mkdtemp(join(tmpdir(), 'dataflow-metrics-'));
  const logger = options.logger ?? silentLogger;
  const connectors = options.connectors ?? localConnectorFactory({ stream: new NullStream() });
  let node: DataflowNode;
  let closeStore: () => Promise<void> = () => Promise.resolve();
  try {
    if (options.wrap === undefined) {
      node = await startNode({ store: { type: 'pglite', dataDir: dir }, logger, connectors, statusReportIntervalMs: 0, ...overrides });
    } else {
      const opened = await openNodeStore({ type: 'pglite', dataDir: join(dir, 'journal') }, logger);
      closeStore = () => opened.plugin.close();
      node = await startNode({ store: { type: 'plugin', plugin: options.wrap(opened.plugin) }, logger, connectors, statusReportIntervalMs: 0, ...overrides }).catch(
        async (error: unknown) => {
          await closeStore();
          throw error;
        },
      );
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    node,
    dir,
    async close() {
      try {
        await node.shutdown();
        await closeStore();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** One sample of a scrape. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the text exposition format (comments skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the sample named `name` whose labels include `labels`; undefined when there is none. */
export function valueOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value;
}
