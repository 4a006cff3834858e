/**
 * The README's first command, exactly: `npm start` from the repository root
 * on a fresh data directory, no external service. Within 15 s of the node
 * saying where its API is, the API lists both demo pipelines running with
 * growing counts, the console page is served, the metrics endpoint counts
 * records, and SIGTERM to npm's own pid stops it with 0. A SIGHUP to npm's
 * own pid (npm dies of it without passing it on) stops the node too.
 */
import { execFileSync, spawn } from 'node:child_process';
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

/** `npm start` on the test's data directory, its stderr lines collected (the vitest config sets DATAFLOW_API_PORT / DATAFLOW_METRICS_PORT to 0: the node says which ports it took). */
function npmStart() {
  const child = spawn('npm', ['start'], { cwd: root, env: { ...process.env, DATAFLOW_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  child.stderr.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stdout.resume();
  const messages = (): string[] => lines.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { message: string }).message);
  return { child, lines, messages };
}

describe('npm start on embedded defaults', () => {
  it('serves the console, the API and the metrics, with both demo pipelines counting, and stops on SIGTERM', { timeout: 120_000 }, async () => {
    const { child, lines, messages } = npmStart();
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
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

  it('stops cleanly when npm alone gets a SIGHUP (npm dies without passing it on): nothing is left running', { timeout: 120_000 }, async () => {
    const { child, messages } = npmStart();
    // The node holds npm's pipes: they close when the node is gone too, not when npm dies.
    const closed = new Promise<void>((done) => child.on('close', () => done()));
    let nodePid: number | undefined;
    try {
      await vi.waitFor(() => expect(messages().some((m) => m.startsWith('admin API and console on '))).toBe(true), { timeout: 90_000, interval: 100 });
      nodePid = Number(execFileSync('pgrep', ['-P', String(child.pid)]).toString().trim().split('\n')[0]);
      expect(nodePid).toBeGreaterThan(0);
      child.kill('SIGHUP');
      // Bounded, so that a node left running is killed below instead of outliving the test.
      const waited = await Promise.race([closed.then(() => 'closed'), new Promise<string>((done) => setTimeout(() => done('still running after 30 s'), 30_000))]);
      expect(waited).toBe('closed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (nodePid !== undefined && alive(nodePid)) process.kill(nodePid, 'SIGKILL');
    }
    expect(messages()).toContain('the parent process (npm) is gone: stopping');
    // The stop's last line (with the demo, where it resumes).
    expect(messages().at(-1)).toMatch(/^stopped pipeline demo at offset \d+/);
    // Its pipes close a moment before the process is reaped.
    await vi.waitFor(() => expect(alive(nodePid)).toBe(false), { timeout: 5_000, interval: 50 });
  });
});

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
