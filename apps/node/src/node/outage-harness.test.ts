/**
 * What the outage e2e tests share (not a test itself: vitest only runs
 * `*.{unit,int,e2e}.test.ts`): a Cassandra or Kafka of the test's own,
 * started by `scripts/services.sh` under a temporary home on free ports from
 * the jars the shared services home already holds (so it can be stopped and
 * started again without touching the services other tests use), and the
 * built node started on a config file, its JSON log lines collected.
 */
import { freePort } from '@dataflow/test-env';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../../../..');
const cli = resolve(import.meta.dirname, '../../dist/cli/dataflow.js');

/** A service of the test's own. */
export interface PrivateService {
  /** The temporary directory (the service's home is under it; tests may keep their files there). */
  readonly dir: string;
  /** The port clients connect to. */
  readonly port: number;
  up(): void;
  down(): void;
  /** Stops the service and removes the directory. */
  remove(): Promise<void>;
}

/** Starts a private `cassandra` or `kafka` (up to 4 minutes on a cold machine). */
export async function privateService(kind: 'cassandra' | 'kafka'): Promise<PrivateService> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: the test target depends on build (npx nx build @dataflow/node)`);
  const dir = await mkdtemp(join(tmpdir(), `dataflow-${kind}-outage-`));
  const home = join(dir, 'services');
  await mkdir(home, { recursive: true });
  // The jars come from the shared services home's Maven repository (npm test brought it up): nothing is downloaded again.
  const shared = process.env['DATAFLOW_SERVICES_HOME'] ?? join(homedir(), '.cache', 'dataflow', 'services');
  await symlink(join(shared, 'm2'), join(home, 'm2'));
  const port = await freePort();
  // The shared services' addresses must not leak into the private one's settings.
  const { DATAFLOW_CASSANDRA_CONTACT_POINTS: _points, DATAFLOW_CASSANDRA_LOCAL_DC: _dc, DATAFLOW_KAFKA_BROKERS: _brokers, ...rest } = process.env;
  const env: NodeJS.ProcessEnv =
    kind === 'cassandra'
      ? { ...rest, DATAFLOW_SERVICES_HOME: home, DATAFLOW_CASSANDRA_PORT: String(port), DATAFLOW_CASSANDRA_STORAGE_PORT: String(await freePort()), DATAFLOW_CASSANDRA_SSL_STORAGE_PORT: String(await freePort()) }
      : { ...rest, DATAFLOW_SERVICES_HOME: home, DATAFLOW_KAFKA_PORT: String(port), DATAFLOW_KAFKA_CONTROLLER_PORT: String(await freePort()) };
  /** `scripts/services.sh <action> <kind>`; fails with its output. */
  const services = (action: 'up' | 'down'): void => {
    execFileSync('bash', ['scripts/services.sh', action, kind], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  };
  services('up');
  return {
    dir,
    port,
    up: () => services('up'),
    down: () => services('down'),
    remove: async () => {
      try {
        services('down');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

export interface LogLine {
  readonly log_level: string;
  readonly message: string;
}

/** The built node running on a config file. */
export interface NodeRun {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  readonly exited: Promise<number | null>;
  /** undefined while it runs. */
  exitCode(): number | null | undefined;
  /** GET on its API: status and JSON body (a function property: tests take it out of the object). */
  readonly get: <T>(path: string) => Promise<{ status: number; body: T }>;
}

/** Starts `dataflow start --config <config>` in `cwd`, its API on `apiPort`, with only PATH from this environment. */
export function startNode(config: string, cwd: string, apiPort: number): NodeRun {
  const child = spawn(process.execPath, [cli, 'start', '--config', config], { cwd, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: LogLine[] = [];
  let code: number | null | undefined;
  const exited = new Promise<number | null>((done) =>
    child.on('exit', (exit) => {
      code = exit;
      done(exit);
    }),
  );
  let rest = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
  });
  return {
    child,
    logs,
    exited,
    exitCode: () => code,
    get: async <T>(path: string) => {
      const response = await fetch(`http://127.0.0.1:${apiPort}${path}`);
      return { status: response.status, body: (await response.json()) as T };
    },
  };
}
