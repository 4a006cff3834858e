/**
 * The README's first command, exactly: `npm start` from the repository root
 * on a fresh data directory, no external service. Within 15 s of the node
 * saying where its API is, the API lists both demo pipelines running with
 * growing counts, the console page is served, the metrics endpoint counts
 * records, and SIGTERM to npm's own pid stops it with 0.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dataflow-embedded-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

interface Listed {
  readonly pipelines: readonly { readonly id: string; readonly status: string }[];
}
interface Counted {
  readonly recordsProcessed: number;
}

describe('npm start on embedded defaults', () => {
  it('serves the console, the API and the metrics, with both demo pipelines counting, and stops on SIGTERM', { timeout: 120_000 }, async () => {
    // The vitest config sets DATAFLOW_API_PORT / DATAFLOW_METRICS_PORT to 0: the node says which ports it took.
    const child = spawn('npm', ['start'], { cwd: root, env: { ...process.env, DATAFLOW_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let rest = '';
    child.stderr.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts);
    });
    child.stdout.resume();
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const messages = () => lines.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { message: string }).message);
      const apiLine = await vi.waitFor(
        () => {
          const found = messages().find((m) => m.startsWith('admin API and console on '));
          if (found === undefined) throw new Error(`no API line yet:\n${lines.join('\n')}`);
          return found;
        },
        { timeout: 90_000, interval: 100 },
      );
      const base = /on (http:\/\/[^/]+)\//.exec(apiLine)?.[1] ?? '';
      const metricsUrl = /^metrics on (.+)$/.exec(messages().find((m) => m.startsWith('metrics on ')) ?? '')?.[1] ?? '';
      const shownAt = Date.now();
      const get = async <T>(path: string): Promise<T> => (await (await fetch(`${base}${path}`)).json()) as T;

      await vi.waitFor(
        async () => {
          const { pipelines } = await get<Listed>('/api/v1/pipelines');
          expect(pipelines.map((p) => [p.id, p.status]).sort()).toEqual([
            ['demo', 'running'],
            ['node-metrics', 'running'],
          ]);
          expect((await get<Counted>('/api/v1/pipelines/node-metrics/metrics')).recordsProcessed).toBeGreaterThan(0);
        },
        { timeout: 15_000, interval: 250 },
      );
      const before = (await get<Counted>('/api/v1/pipelines/demo/metrics')).recordsProcessed;
      await vi.waitFor(async () => expect((await get<Counted>('/api/v1/pipelines/demo/metrics')).recordsProcessed).toBeGreaterThan(before), { timeout: 10_000, interval: 250 });
      expect(Date.now() - shownAt).toBeLessThan(15_000);

      const page = await fetch(`${base}/`);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await page.text()).toContain('<script type="module" src="/console/console.js">');
      expect(await (await fetch(metricsUrl)).text()).toMatch(/^pipeline_records_processed_total\{pipeline="demo"\} [1-9]/m);
      expect((await fetch(`${base}/ready`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
