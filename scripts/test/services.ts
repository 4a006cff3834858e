/**
 * What a test file needs to reach the real services: the settings provided by
 * the global setup, and names unique to the file (keyspace, schema, topic
 * prefix) so that test files never see each other's data.
 */
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
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

/** A TCP port free on 127.0.0.1 now (for a process or server a test starts beside others). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', done);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

/** A name unique within the run (for topics, tables, persistence ids inside one file). */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A TCP proxy in front of a service, which a test can cut (every connection destroyed, no new ones) and restore on the same port. */
export interface ServiceProxy {
  /** The service's URL with the proxy's host and port. */
  readonly url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a proxy to the service at `serviceUrl` (a URL such as
 * `redis://127.0.0.1:6379`): what a test uses to take a service away from one
 * client only, the way a network partition does.
 */
export async function serviceProxy(serviceUrl: string, defaultPort = 6379): Promise<ServiceProxy> {
  const target = new URL(serviceUrl);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const start = async () => {
    if (server !== undefined) return;
    const listening = createServer((from) => {
      const to = connect(Number(target.port || defaultPort), target.hostname);
      for (const s of [from, to]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      from.pipe(to).pipe(from);
    });
    await new Promise<void>((resolve) => listening.listen(port, '127.0.0.1', resolve));
    port = (listening.address() as AddressInfo).port;
    server = listening;
  };
  const stop = async () => {
    const closing = server;
    server = undefined;
    for (const s of sockets) s.destroy();
    if (closing !== undefined) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };
  await start();
  const url = new URL(serviceUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { url: url.toString().replace(/\/$/, ''), cut: stop, restore: start, close: stop };
}
