/**
 * A Cassandra journal that goes away for 30 s: the node runs on a Cassandra
 * of its own (started by `scripts/services.sh` under a temporary home, on
 * free ports, from the jars the shared services home already holds), which
 * is stopped while a pipeline writes and started again. The node stays up,
 * `/ready` names the journal as degraded, it is ready again within seconds
 * of Cassandra answering (the driver's default reconnection backoff used to
 * keep it away for about a minute more), the pipeline writes every record
 * exactly once, its status shows no retry that is over, and the node stops
 * cleanly and exits at once (a connection the driver kept open after its
 * shutdown used to hold the process). Prints a JSON line with the numbers.
 */
import { freePort } from '@dataflow/test-env';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { privateService, startNode, type PrivateService } from './node/outage-harness.test.js';

const RECORDS = 12_000;
const OUTAGE_MS = 30_000;

let cassandra: PrivateService;
beforeAll(async () => {
  cassandra = await privateService('cassandra');
}, 300_000);
afterAll(async () => {
  await cassandra?.remove();
}, 120_000);

describe('a node whose Cassandra journal goes away for 30 s', () => {
  it('stays up and degraded, is ready again within seconds of Cassandra, and writes every record once', { timeout: 420_000 }, async () => {
    const apiPort = await freePort();
    const dir = cassandra.dir;
    const output = join(dir, 'out.jsonl');
    const config = join(dir, 'dataflow.yaml');
    await writeFile(
      config,
      [
        'node: { id: outage-node }',
        'journal: { type: cassandra, migrate: auto }',
        `cassandra: { contactPoints: ["127.0.0.1:${cassandra.port}"], localDataCenter: datacenter1, keyspace: outage_journal }`,
        `api: { port: ${apiPort} }`,
        'metrics: { enabled: false }',
        'projections: { enabled: false }',
        'pipelines:',
        '  - id: ticks',
        '    start: true',
        `    definition: { name: ticks, source: { type: generator, rate: 150, count: ${RECORDS}, fields: { id: { kind: sequence } } }, sink: { type: file, path: "${output}", format: jsonl }, batch: { size: 50, maxWaitMs: 100 } }`,
      ].join('\n'),
    );
    const node = startNode(config, dir, apiPort);
    const { child, logs, exited, get } = node;
    try {
      await vi.waitFor(async () => expect((await get<{ recordsProcessed: number }>('/api/v1/pipelines/ticks/metrics')).body.recordsProcessed).toBeGreaterThan(1_000), { timeout: 120_000, interval: 250 });

      const stoppedAt = Date.now();
      cassandra.down();
      await vi.waitFor(
        async () => {
          const ready = await get<{ dependencies: { name: string; state: string; detail: string }[] }>('/ready');
          expect(ready.status).toBe(503);
          expect(ready.body.dependencies.find((d) => d.name === 'journal')).toMatchObject({ state: 'degraded', detail: expect.stringMatching(/ticks|coordinator/) as unknown });
        },
        { timeout: 60_000, interval: 500 },
      );
      const degradedAfterMs = Date.now() - stoppedAt;
      await new Promise((done) => setTimeout(done, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
      expect(node.exitCode()).toBeUndefined();

      cassandra.up();
      const upAt = Date.now();
      await vi.waitFor(async () => expect((await get('/ready')).status).toBe(200), { timeout: 120_000, interval: 250 });
      const readyAfterMs = Date.now() - upAt;
      // The driver's default backoff had grown to about a minute by now; the node's policy waits at most 5 s between attempts.
      expect(readyAfterMs).toBeLessThan(30_000);

      await vi.waitFor(async () => expect((await get<{ status: string }>('/api/v1/pipelines/ticks/status')).body.status).toBe('stopped'), { timeout: 180_000, interval: 500 });
      expect((await get<{ retry: unknown; error: unknown }>('/api/v1/pipelines/ticks/status')).body).toMatchObject({ retry: null, error: null });
      const ids = (await readFile(output, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { id: number }).id);
      expect(ids.length).toBe(RECORDS);
      expect(new Set(ids).size).toBe(RECORDS);
      // It exits within moments of its stop: a connection the Cassandra driver left open after its shutdown once kept it alive for good.
      const termAt = Date.now();
      child.kill('SIGTERM');
      const ended = await Promise.race([exited, new Promise<string>((done) => setTimeout(() => done('still running 20 s after SIGTERM'), 20_000))]);
      expect(ended).toBe(0);
      const exitAfterMs = Date.now() - termAt;
      process.stdout.write(`${JSON.stringify({ bench: 'cassandra-outage', outageMs: OUTAGE_MS, degradedAfterMs, readyAfterMs, records: ids.length, exitAfterMs })}\n`);
      expect(logs.map((l) => l.message)).toContain('node state degraded -> ok');
      expect(logs.filter((l) => l.log_level === 'error').map((l) => l.message)).not.toContainEqual(expect.stringMatching(/^the node stops|not cleanly/));
    } finally {
      if (node.exitCode() === undefined) child.kill('SIGKILL');
    }
  });
});
