/**
 * A Kafka broker that goes away for 30 s under two pipelines of one node:
 * `produce` (generator -> Kafka sink, idempotent producer) and
 * `consume` (Kafka source -> file). The broker is the test's own (started by
 * `scripts/services.sh` under a temporary home, on free ports), stopped while
 * both run and started again. The node stays up; `consume` shows its source
 * as unreachable (with the cause) while the broker is away and `produce`
 * shows its batch retrying; neither fails; once the broker is back both go
 * on, and the file holds every generated record exactly once. Before, such an
 * outage was invisible: the consumer said `running` with no error. Prints a
 * JSON line with the numbers.
 */
import { createKafkaClient } from '@dataflow/connectors';
import { freePort } from '@dataflow/test-env';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { privateService, startNode, type PrivateService } from './node/outage-harness.test.js';

const RECORDS = 6_000;
const OUTAGE_MS = 30_000;

let kafka: PrivateService;
beforeAll(async () => {
  kafka = await privateService('kafka');
  // DataFlow never has the brokers create a topic: the operator's step.
  const admin = await createKafkaClient({ brokers: [`127.0.0.1:${kafka.port}`], clientId: 'kafka-outage-test' }).admin();
  try {
    await admin.createTopics([{ topic: 'outage-in', partitions: 3 }]);
  } finally {
    await admin.close();
  }
}, 300_000);
afterAll(async () => {
  await kafka?.remove();
}, 120_000);

interface Status {
  readonly status: string;
  readonly retry: unknown;
  readonly error: unknown;
  readonly source?: { readonly state: string; readonly cause: string } | null;
}

describe('a node whose Kafka broker goes away for 30 s', () => {
  it('stays up, shows the source unreachable and the sink retrying, and then delivers every record exactly once', { timeout: 420_000 }, async () => {
    const dir = kafka.dir;
    const apiPort = await freePort();
    const output = join(dir, 'out.jsonl');
    const config = join(dir, 'dataflow.yaml');
    await writeFile(
      config,
      [
        `node: { id: kafka-outage-node, dataDir: "${join(dir, 'data')}" }`,
        'journal: { type: embedded }',
        `kafka: { brokers: ["127.0.0.1:${kafka.port}"] }`,
        `api: { port: ${apiPort} }`,
        'metrics: { enabled: false }',
        'projections: { enabled: false }',
        'pipelines:',
        '  - id: produce',
        '    start: true',
        `    definition: { name: produce, source: { type: generator, rate: 200, count: ${RECORDS}, fields: { id: { kind: sequence } } }, sink: { type: kafka, topic: outage-in }, batch: { size: 50, maxWaitMs: 100 } }`,
        '  - id: consume',
        '    start: true',
        `    definition: { name: consume, source: { type: kafka, topics: [outage-in], format: json }, sink: { type: file, path: "${output}", format: jsonl }, batch: { size: 100, maxWaitMs: 200 } }`,
      ].join('\n'),
    );
    const node = startNode(config, dir, apiPort);
    const { child, logs, exited, get } = node;
    const status = async (id: string) => (await get<Status>(`/api/v1/pipelines/${id}/status`)).body;
    const processed = async (id: string) => (await get<{ recordsProcessed: number }>(`/api/v1/pipelines/${id}/metrics`)).body.recordsProcessed;
    try {
      await vi.waitFor(async () => expect(await processed('consume')).toBeGreaterThan(1_000), { timeout: 120_000, interval: 250 });

      const stoppedAt = Date.now();
      kafka.down();
      await vi.waitFor(
        async () => {
          expect((await status('consume')).source).toMatchObject({ state: 'unreachable', cause: expect.stringMatching(/\S/) as unknown });
          expect((await status('produce')).retry).not.toBeNull();
        },
        { timeout: 90_000, interval: 500 },
      );
      const reportedAfterMs = Date.now() - stoppedAt;
      await new Promise((done) => setTimeout(done, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
      expect(node.exitCode()).toBeUndefined();
      expect((await status('consume')).status).toBe('running');
      expect((await status('produce')).status).toBe('running');

      kafka.up();
      const upAt = Date.now();
      await vi.waitFor(async () => expect(await processed('consume')).toBe(RECORDS), { timeout: 180_000, interval: 500 });
      const caughtUpAfterMs = Date.now() - upAt;
      await vi.waitFor(async () => expect((await status('consume')).source ?? null).toBeNull(), { timeout: 60_000, interval: 500 });
      await vi.waitFor(async () => expect((await status('produce')).status).toBe('stopped'), { timeout: 60_000, interval: 500 });
      expect(await status('produce')).toMatchObject({ retry: null, error: null });
      expect(await status('consume')).toMatchObject({ status: 'running', retry: null, error: null });

      const ids = (await readFile(output, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { value: { id: number } }).value.id);
      expect(ids.length).toBe(RECORDS);
      expect(new Set(ids).size).toBe(RECORDS);
      expect(Math.min(...ids)).toBe(1);
      expect(Math.max(...ids)).toBe(RECORDS);
      // One warning naming the cause when the source stopped answering, one line when it answered again.
      expect(logs.map((l) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(/consume.*source.*(unreachable|failed)/i), expect.stringMatching(/consume.*source.*(again|answers)/i)]));

      child.kill('SIGTERM');
      const ended = await Promise.race([exited, new Promise<string>((done) => setTimeout(() => done('still running 20 s after SIGTERM'), 20_000))]);
      expect(ended).toBe(0);
      process.stdout.write(`${JSON.stringify({ bench: 'kafka-outage', outageMs: OUTAGE_MS, reportedAfterMs, caughtUpAfterMs, records: ids.length })}\n`);
      expect(logs.filter((l) => l.log_level === 'error').map((l) => l.message)).toEqual([]);
    } catch (error) {
      // What the node said, for the failure's cause.
      process.stderr.write(`the node's last log lines:\n${logs.slice(-40).map((l) => `${l.log_level} ${l.message}`).join('\n')}\n`);
      throw error;
    } finally {
      if (node.exitCode() === undefined) child.kill('SIGKILL');
    }
  });
});
