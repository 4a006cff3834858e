/**
 * Real node processes for the cluster's end-to-end tests and its report
 * script (`cluster.e2e.test.ts`, `cluster-parallelism.e2e.test.ts`,
 * `bench/cluster.bench.ts`): a config file for a cluster on a private
 * journal schema and Redis prefix, the built `dataflow start` spawned with
 * its log lines collected, the wait for it to join, where the pipelines run,
 * and the journal check that no pipeline ran twice.
 *
 * Test support only: nothing of the node imports it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type pg from 'pg';

/** The built CLI the processes run (the test targets depend on `build`). */
export const builtCli = resolve(import.meta.dirname, '../../../dist/cli/dataflow.js');

/** A node process and what it logged (its stderr, one JSON line per entry). */
export interface NodeProcess {
  readonly id: string;
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  /** The admin API's base URL, known once the node said where it listens (`nodeJoined`). */
  url: string;
}

export interface ClusterConfig {
  readonly postgresUrl: string;
  readonly journalSchema: string;
  readonly redisUrl: string;
  /** Prefixes the Redis keys, so runs side by side never share a cluster. */
  readonly run: string;
  readonly leaseTtlMs: number;
  readonly tickMs: number;
  readonly shards?: number;
  /** More YAML lines (`projections: { enabled: false }`, ...). */
  readonly extra?: readonly string[];
}

/** Writes `<dir>/<name>.yaml` for a node of the cluster `config` describes (API on a free port, no metrics server); returns its path. */
export async function writeClusterConfig(dir: string, name: string, config: ClusterConfig): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(
    file,
    [
      'journal: { type: postgres, migrate: auto }',
      `postgres: { url: "${config.postgresUrl}", schema: ${config.journalSchema} }`,
      `redis: { url: "${config.redisUrl}", keyPrefix: "${config.run}:" }`,
      `cluster: { enabled: true, keyPrefix: "${config.run}:cluster:", leaseTtlMs: ${config.leaseTtlMs}, tickMs: ${config.tickMs}, shards: ${config.shards ?? 32} }`,
      'api: { port: 0 }',
      'metrics: { enabled: false }',
      ...(config.extra ?? []),
    ].join('\n'),
  );
  return file;
}

/** Spawns `dataflow start --config <file>` as node `id` in `cwd`, collecting its log lines. */
export function startNodeProcess(id: string, file: string, cwd: string): NodeProcess {
  const child = spawn(process.execPath, [builtCli, 'start', '--config', file], { cwd, env: { PATH: process.env['PATH'] ?? '', DATAFLOW_NODE_ID: id }, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l !== ''));
  });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { id, child, lines, exited, url: '' };
}

/**
 * The node's log messages. `strict`: a line that is not a JSON log line
 * throws, naming the node and the line (the node logs JSON only).
 */
export function nodeMessages(node: NodeProcess, options: { readonly strict?: boolean } = {}): string[] {
  return node.lines.flatMap((line) => {
    if (line.startsWith('{')) return [(JSON.parse(line) as { message: string }).message];
    if (options.strict === true) throw new Error(`${node.id} wrote a line that is not a JSON log line: ${line}`);
    return [];
  });
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Waits until the node listens and is a member of the cluster (it logged
 * both); sets and returns its URL. Fails at once if the process exits, and
 * after `timeoutMs` with its last lines.
 */
export async function nodeJoined(node: NodeProcess, options: { readonly timeoutMs?: number; readonly strict?: boolean } = {}): Promise<string> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (node.child.exitCode !== null || node.child.signalCode !== null) throw new Error(`${node.id} exited (${node.child.exitCode ?? node.child.signalCode}): ${node.lines.slice(-3).join(' | ')}`);
    const messages = nodeMessages(node, options);
    const line = messages.find((m) => m.startsWith('admin API and console on '));
    const url = line === undefined ? undefined : /on (http:\/\/[^/]+)\//.exec(line)?.[1];
    if (url !== undefined && messages.some((m) => m.startsWith(`cluster: member ${node.id}`))) {
      node.url = url;
      return url;
    }
    if (Date.now() > deadline) throw new Error(`${node.id} has not joined: ${node.lines.slice(-3).join(' | ')}`);
    await sleep(100);
  }
}

/** `GET /api/v1/cluster` of the node: what it hosts and whether it runs the coordinator. */
export async function clusterViewOf(node: NodeProcess): Promise<{ readonly hosted: string[]; readonly coordinator: boolean; readonly members: readonly { nodeId: string }[] }> {
  const response = await fetch(`${node.url}/api/v1/cluster`);
  if (!response.ok) throw new Error(`${node.id}: GET /api/v1/cluster answered ${response.status}`);
  return (await response.json()) as { hosted: string[]; coordinator: boolean; members: { nodeId: string }[] };
}

/** Pipeline (or task) id -> the nodes of `live` hosting it: more than one means it runs twice. */
export async function hostedBy(live: readonly NodeProcess[]): Promise<Map<string, string[]>> {
  const byPipeline = new Map<string, string[]>();
  for (const node of live) for (const id of (await clusterViewOf(node)).hosted) byPipeline.set(id, [...(byPipeline.get(id) ?? []), node.id]);
  return byPipeline;
}

/**
 * The pipelines whose journal (in `journalSchema`) shows a writer writing
 * again after another one wrote: the pipeline ran on two nodes at once.
 * One line per occurrence.
 */
export async function interleavedWriters(db: pg.Pool, journalSchema: string): Promise<string[]> {
  const { rows } = await db.query<{ persistence_id: string; writer_id: string }>(
    `SELECT persistence_id, writer_id FROM ${journalSchema}.event_journal WHERE persistence_id LIKE 'pipeline-%' ORDER BY persistence_id, sequence_nr`,
  );
  const bad: string[] = [];
  const seen = new Map<string, Set<string>>();
  const last = new Map<string, string>();
  for (const row of rows) {
    const writers = seen.get(row.persistence_id) ?? new Set<string>();
    if (last.get(row.persistence_id) !== row.writer_id && writers.has(row.writer_id)) bad.push(`${row.persistence_id}: writer ${row.writer_id} wrote again after another`);
    writers.add(row.writer_id);
    seen.set(row.persistence_id, writers);
    last.set(row.persistence_id, row.writer_id);
  }
  return bad;
}
