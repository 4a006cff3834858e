/**
 * Against a real Prometheus 2.42 (Debian's package, extracted by `apt-get download` +
 * `dpkg-deb -x` into ~/.cache/dataflow/services/prometheus): Prometheus scrapes itself
 * every second and remote_writes to the receiver; the test polls and acks like a pipeline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRemoteWriteSourceDefinition, RemoteWriteSource } from './remote-write-source.js';
import type { RemoteWriteSample } from './remote-write-decoder.js';

const binary = process.env['DATAFLOW_PROMETHEUS_BIN'] ?? join(homedir(), '.cache/dataflow/services/prometheus/usr/bin/prometheus');

let prometheus: ChildProcess | undefined;
const source = new RemoteWriteSource(parseRemoteWriteSourceDefinition({ type: 'prometheus-remote-write', port: 0 }));

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  await source.close();
});

describe('RemoteWriteSource with a real Prometheus', () => {
  it('receives remote-written samples with labels and values', async () => {
    if (!existsSync(binary)) throw new Error(`Prometheus binary not found at ${binary}; run 'npm run services -- up prometheus' (it extracts Debian's prometheus package there)`);
    await source.open({ pipelineId: 'rw-int', checkpoint: undefined, signal: new AbortController().signal });
    const dir = mkdtempSync(join(tmpdir(), 'dataflow-prom-'));
    const promPort = 19_090 + Math.floor(Math.random() * 800);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s }',
        'scrape_configs:',
        `  - job_name: self`,
        `    static_configs: [{ targets: ['127.0.0.1:${promPort}'] }]`,
        'remote_write:',
        `  - url: http://127.0.0.1:${source.address().port}/api/v1/write`,
        '    queue_config: { batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s }',
      ].join('\n'),
    );
    prometheus = spawn(binary, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    const seen: RemoteWriteSample[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !seen.some((s) => s.metric_name === 'up')) {
      const batch = await source.poll(1000, 1000);
      for (const record of batch.records) if (record.ok) seen.push(record.value as RemoteWriteSample);
      await source.ack(batch.offset);
    }
    const up = seen.find((s) => s.metric_name === 'up');
    expect(up).toMatchObject({ value: 1, job: 'self', instance: `127.0.0.1:${promPort}`, labels: { job: 'self', instance: `127.0.0.1:${promPort}` } });
    expect(Math.abs(up!.timestamp - Date.now())).toBeLessThan(120_000);
    expect(seen.some((s) => s.metric_name === 'prometheus_build_info' && s.labels['version'] === '2.42.0+ds')).toBe(true);
  }, 90_000);
});
