/**
 * Cluster report (issue 14): failover, rebalance and hand-over times of three
 * real node processes (the built `dataflow start`) on the real Postgres
 * journal and Redis, measured over several rounds and printed as a table and
 * one JSON line; nothing is asserted on time (the e2e test checks behaviour).
 *
 * Each round: three nodes join; 30 pipelines (unbounded generators into an
 * upserting Postgres table) are created through one node; then
 * 1. failover: the node running the most pipelines is SIGKILLed; the time
 *    until every one of its pipelines runs on exactly one survivor (bounded
 *    below by the lease TTL: its leases must expire first);
 * 2. rebalance: the killed node is started again; the time from its joining
 *    until every pipeline runs on exactly one node and it runs its share;
 * 3. hand-over: another node gets SIGTERM; the time until every one of its
 *    pipelines runs on exactly one of the others (no lease wait: it releases
 *    them).
 * After the round, no pipeline's journal shows two writers interleaved.
 *
 *   npx nx run @dataflow/node:bench-cluster
 *   (or: cd apps/node && npx tsc -b tsconfig.lib.json && npx tsx src/bench/cluster.bench.ts [rounds])
 *
 * Targets: DATAFLOW_POSTGRES_URL, DATAFLOW_REDIS_URL (defaults: the local servers).
 * DATAFLOW_BENCH_LOGS=<dir> keeps every node's log of every round there
 * (`round-<n>-<node>-<k>.log`, k counting the node's starts), to read what a
 * slow round did.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { builtCli, clusterViewOf, hostedBy, interleavedWriters, nodeJoined, startNodeProcess, writeClusterConfig, type NodeProcess } from '../cluster/testing/node-processes.js';

const postgresUrl = process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env['DATAFLOW_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const LEASE_TTL_MS = 4_000;
const TICK_MS = 500;
const PIPELINES = 30;

type NodeRun = NodeProcess;

interface Round {
  readonly failoverMs: number;
  readonly moved: number;
  readonly rebalanceMs: number;
  readonly handoverMs: number;
  readonly handedOver: number;
  /** The leaving node ran the coordinator (the others wait for it to recover elsewhere before they place). */
  readonly coordinatorLeft: boolean;
  readonly interleaved: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const placement = hostedBy;

const placedOnce = (byPipeline: Map<string, string[]>, ids: readonly string[]) => ids.every((id) => byPipeline.get(id)?.length === 1);

async function runRound(round: number, dir: string, db: pg.Pool): Promise<Round> {
  const run = `cb${Date.now().toString(36)}${round}`;
  const journalSchema = `${run}_journal`;
  const sinkSchema = `${run}_sink`;
  const nodes: NodeRun[] = [];
  await db.query(`CREATE SCHEMA ${sinkSchema}`);
  await db.query(`CREATE TABLE ${sinkSchema}.rows (pipeline text NOT NULL, id bigint NOT NULL, PRIMARY KEY (pipeline, id))`);
  const file = await writeClusterConfig(dir, run, { postgresUrl, journalSchema, redisUrl, run, leaseTtlMs: LEASE_TTL_MS, tickMs: TICK_MS, extra: ['projections: { enabled: false }'] });
  const start = async (id: string): Promise<NodeRun> => {
    const node = startNodeProcess(id, file, dir);
    nodes.push(node);
    await nodeJoined(node);
    return node;
  };
  try {
    const [a, b, c] = [await start('node-a'), await start('node-b'), await start('node-c')] as [NodeRun, NodeRun, NodeRun];
    const ids = Array.from({ length: PIPELINES }, (_, i) => `p${String(i).padStart(2, '0')}`);
    for (const id of ids) {
      await until(`pipeline ${id} to be created`, 60_000, async () => {
        const response = await fetch(`${a.url}/api/v1/pipelines`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            id,
            start: true,
            definition: {
              name: `pipeline-${id}`,
              source: { type: 'generator', rate: 50, fields: { id: { kind: 'sequence' } } },
              transforms: [{ type: 'map', set: [{ to: 'pipeline', value: id }] }],
              sink: { type: 'postgres', schema: sinkSchema, table: 'rows', columns: { pipeline: 'pipeline', id: 'id' }, upsert: { key: ['pipeline', 'id'] } },
              batch: { size: 50, maxWaitMs: 200 },
            },
          }),
        });
        if (response.status === 503) return undefined;
        // 200: a try answered 503 had created it (the coordinator moved meanwhile).
        if (response.status !== 201 && response.status !== 200) throw new Error(`creating ${id} answered ${response.status}: ${await response.text()}`);
        return true;
      });
    }
    const before = await until('every pipeline to be placed once', 30_000, async () => {
      const byPipeline = await placement([a, b, c]);
      return placedOnce(byPipeline, ids) ? byPipeline : undefined;
    });

    // 1. Failover after a SIGKILL of the busiest node.
    const load = (node: NodeRun) => [...before.values()].filter((owners) => owners[0] === node.id).length;
    const victim = [a, b, c].sort((x, y) => load(y) - load(x))[0] as NodeRun;
    const survivors = [a, b, c].filter((n) => n !== victim);
    const orphans = [...before].filter(([, owners]) => owners[0] === victim.id).map(([id]) => id);
    const killedAt = performance.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    await until('the killed node’s pipelines to run elsewhere', LEASE_TTL_MS + 30_000, async () => (placedOnce(await placement(survivors), orphans) ? true : undefined));
    const failoverMs = performance.now() - killedAt;

    // 2. Rebalance when it comes back.
    const again = await start(victim.id);
    const joinedAt = performance.now();
    const live = [...survivors, again];
    await until('the restarted node to take its share', 60_000, async () => {
      const byPipeline = await placement(live);
      return placedOnce(byPipeline, ids) && [...byPipeline.values()].flat().includes(again.id) ? true : undefined;
    });
    const rebalanceMs = performance.now() - joinedAt;

    // 3. Hand-over on SIGTERM of another node.
    const leaving = survivors[0] as NodeRun;
    const staying = live.filter((n) => n !== leaving);
    const { hosted: handed, coordinator: coordinatorLeft } = await clusterViewOf(leaving);
    const termAt = performance.now();
    leaving.child.kill('SIGTERM');
    await until('the leaving node’s pipelines to run elsewhere', 60_000, async () => (placedOnce(await placement(staying), handed) ? true : undefined));
    const handoverMs = performance.now() - termAt;
    const code = await leaving.exited;
    if (code !== 0) throw new Error(`${leaving.id} exited with ${code} on SIGTERM: ${leaving.lines.slice(-4).join(' | ')}`);

    for (const node of staying) node.child.kill('SIGTERM');
    for (const node of staying) await node.exited;
    const interleaved = (await interleavedWriters(db, journalSchema)).length;
    return { failoverMs: Math.round(failoverMs), moved: orphans.length, rebalanceMs: Math.round(rebalanceMs), handoverMs: Math.round(handoverMs), handedOver: handed.length, coordinatorLeft, interleaved };
  } finally {
    for (const node of nodes) if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    const logs = process.env['DATAFLOW_BENCH_LOGS'];
    if (logs !== undefined && logs !== '') {
      await mkdir(logs, { recursive: true });
      for (const [k, node] of nodes.entries()) await writeFile(join(logs, `round-${round}-${node.id}-${k}.log`), `${node.lines.join('\n')}\n`);
    }
    await db.query(`DROP SCHEMA IF EXISTS ${sinkSchema} CASCADE`);
    await db.query(`DROP SCHEMA IF EXISTS ${journalSchema} CASCADE`);
  }
}

const median = (values: readonly number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Runs `rounds` rounds; prints a table and one JSON line. */
export async function runClusterBench(rounds = 3) {
  if (!existsSync(builtCli)) throw new Error(`${builtCli} is missing: build the node first (npx nx build @dataflow/node)`);
  const dir = await mkdtemp(join(tmpdir(), 'dataflow-cluster-bench-'));
  const db = new pg.Pool({ connectionString: postgresUrl, max: 2 });
  const results: Round[] = [];
  try {
    for (let round = 1; round <= rounds; round++) results.push(await runRound(round, dir, db));
  } finally {
    await db.end();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`Cluster bench: 3 node processes, ${PIPELINES} pipelines, lease ${LEASE_TTL_MS} ms, tick ${TICK_MS} ms, Postgres journal, Redis; ${rounds} rounds\n`);
  console.table(Object.fromEntries(results.map((r, i) => [`round ${i + 1}`, r])));
  const summary = {
    bench: 'cluster.failover-rebalance',
    rounds,
    pipelines: PIPELINES,
    leaseTtlMs: LEASE_TTL_MS,
    failoverMsMedian: median(results.map((r) => r.failoverMs)),
    failoverMsMax: Math.max(...results.map((r) => r.failoverMs)),
    failoverOverLeaseMedian: Math.round((median(results.map((r) => r.failoverMs)) / LEASE_TTL_MS) * 100) / 100,
    rebalanceMsMedian: median(results.map((r) => r.rebalanceMs)),
    handoverMsMedian: median(results.map((r) => r.handoverMs)),
    interleavedWriters: results.reduce((sum, r) => sum + r.interleaved, 0),
    runs: results,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (summary.interleavedWriters > 0) throw new Error(`${summary.interleavedWriters} journal(s) show two writers interleaved: a pipeline ran twice`);
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runClusterBench(Number(process.argv[2] ?? 3)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
