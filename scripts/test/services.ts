/**
 * What a test file needs to reach the real services: the settings provided by
 * the global setup, and names unique to the file (keyspace, schema, topic
 * prefix) so that test files never see each other's data.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

export interface ServiceSettings {
  readonly kafkaBrokers: readonly string[];
  readonly cassandraContactPoints: readonly string[];
  readonly cassandraLocalDataCenter: string;
  readonly postgresUrl: string;
  readonly redisUrl: string;
  /** Unique per test run; part of every generated name. */
  readonly runId: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    dataflowServices: ServiceSettings;
  }
}

export function serviceSettings(): ServiceSettings {
  const settings = inject('dataflowServices') as ServiceSettings | undefined;
  if (settings === undefined) {
    throw new Error('No service settings: this package\'s vitest config must use dataflowVitestConfig({ services: true })');
  }
  return settings;
}

/**
 * A name unique to one test file in one run, usable as a Cassandra keyspace,
 * a Postgres schema or a Kafka topic prefix: lower case, `[a-z0-9_]`, ≤ 48 chars.
 * Pass `import.meta.url` of the test file.
 */
export function testNamespace(fileUrl: string, suffix = ''): string {
  const file = basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, '');
  const hash = createHash('sha1').update(fileUrl).digest('hex').slice(0, 6);
  const slug = file.toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 18);
  const name = `t_${slug}_${hash}_${serviceSettings().runId}${suffix === '' ? '' : `_${suffix}`}`;
  return name.slice(0, 48);
}

/** A name unique within the run (for topics, tables, persistence ids inside one file). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
