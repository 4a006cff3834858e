/**
 * Vitest global setup: makes the real services reachable once per test run.
 *
 * Runs `scripts/services.sh up` (idempotent, locked against concurrent callers)
 * and provides the printed connection settings to every test file. Settings
 * given as environment variables win, so tests can point at any cluster.
 * When a service cannot start the run fails loudly: a test is never skipped.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import type { ServiceSettings } from './services.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../services.sh', import.meta.url));

export default async function setup(project: TestProject): Promise<void> {
  let stdout: string;
  try {
    ({ stdout } = await run('bash', [script, 'up'], { maxBuffer: 16 * 1024 * 1024, env: process.env }));
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`scripts/services.sh up failed: the test services could not start.\n${e.stderr ?? ''}${e.stdout ?? ''}`, {
      cause: error,
    });
  }
  const values = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(DATAFLOW_[A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) values.set(m[1], m[2]);
  }
  const need = (key: string): string => {
    const v = process.env[key] ?? values.get(key);
    if (v === undefined || v === '') throw new Error(`scripts/services.sh up did not report ${key}`);
    return v;
  };
  // The Prometheus binary the remote-write test starts (a path, not a running service).
  const prometheusBin = values.get('DATAFLOW_PROMETHEUS_BIN');
  if (process.env['DATAFLOW_PROMETHEUS_BIN'] === undefined && prometheusBin !== undefined) process.env['DATAFLOW_PROMETHEUS_BIN'] = prometheusBin;
  // Debian's chromium, which the node's console test drives.
  const chromium = values.get('DATAFLOW_CHROMIUM');
  if (process.env['DATAFLOW_CHROMIUM'] === undefined && chromium !== undefined) process.env['DATAFLOW_CHROMIUM'] = chromium;
  const settings: ServiceSettings = {
    kafkaBrokers: need('DATAFLOW_KAFKA_BROKERS').split(','),
    cassandraContactPoints: need('DATAFLOW_CASSANDRA_CONTACT_POINTS').split(','),
    cassandraLocalDataCenter: process.env['DATAFLOW_CASSANDRA_LOCAL_DC'] ?? values.get('DATAFLOW_CASSANDRA_LOCAL_DC') ?? 'datacenter1',
    postgresUrl: need('DATAFLOW_POSTGRES_URL'),
    redisUrl: need('DATAFLOW_REDIS_URL'),
    runId: `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`,
  };
  project.provide('dataflowServices', settings);
}
