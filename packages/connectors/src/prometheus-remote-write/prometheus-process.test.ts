/**
 * Starts a real Prometheus (Debian's package, extracted by `npm run services --
 * up` into ~/.cache/dataflow/services/prometheus; `DATAFLOW_PROMETHEUS_BIN`
 * overrides) with the given scrape targets, remote-writing to `remoteWriteUrl`.
 * For the remote-write tests only (not a test file itself: no vitest suffix).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

export const prometheusBinary = process.env['DATAFLOW_PROMETHEUS_BIN'] ?? join(homedir(), '.cache/dataflow/services/prometheus/usr/bin/prometheus');

export interface PrometheusProcess {
  readonly port: number;
  readonly process: ChildProcess;
  stop(): void;
}

/** Launches Prometheus scraping `targets` (job -> host:port list) every second. Throws naming the command to run when the binary is missing. */
export function startPrometheus(options: { readonly remoteWriteUrl: string; readonly targets?: Readonly<Record<string, readonly string[]>> }): PrometheusProcess {
  if (!existsSync(prometheusBinary)) {
    throw new Error(`Prometheus binary not found at ${prometheusBinary}; run 'npm run services -- up prometheus' (it extracts Debian's prometheus package there)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'dataflow-prom-'));
  const port = 19_090 + Math.floor(Math.random() * 800);
  const targets = options.targets ?? { self: [`127.0.0.1:${port}`] };
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s }',
      'scrape_configs:',
      ...Object.entries(targets).flatMap(([job, hosts]) => [`  - job_name: ${job}`, `    static_configs: [{ targets: [${hosts.map((h) => `'${h}'`).join(', ')}] }]`]),
      'remote_write:',
      `  - url: ${options.remoteWriteUrl}`,
      '    queue_config: { batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s }',
    ].join('\n'),
  );
  const child = spawn(prometheusBinary, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: 'ignore',
  });
  return { port, process: child, stop: () => child.kill('SIGTERM') };
}
