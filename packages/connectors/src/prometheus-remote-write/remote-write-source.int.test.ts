/**
 * Against a real Prometheus 2.42 (Debian's package, extracted by `apt-get download` +
 * `dpkg-deb -x` into ~/.cache/dataflow/services/prometheus): Prometheus scrapes itself
 * every second and remote_writes to the receiver; the test polls and acks like a pipeline.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startPrometheus, type PrometheusProcess } from './prometheus-process.test.js';
import { parseRemoteWriteSourceDefinition, RemoteWriteSource } from './remote-write-source.js';
import type { RemoteWriteSample } from './remote-write-decoder.js';

let prometheus: PrometheusProcess | undefined;
const source = new RemoteWriteSource(parseRemoteWriteSourceDefinition({ type: 'prometheus-remote-write', port: 0 }));

afterAll(async () => {
  prometheus?.stop();
  await source.close();
});

describe('RemoteWriteSource with a real Prometheus', () => {
  it('receives remote-written samples with labels and values', async () => {
    await source.open({ pipelineId: 'rw-int', checkpoint: undefined, signal: new AbortController().signal });
    prometheus = startPrometheus({ remoteWriteUrl: `http://127.0.0.1:${source.address().port}/api/v1/write` });
    const promPort = prometheus.port;
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
