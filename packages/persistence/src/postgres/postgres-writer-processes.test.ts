/**
 * Starts writer processes (`postgres-writer-child.test.ts`), lets them all
 * start appending at once when every one is connected, and collects what
 * each acknowledged; shared by the multi-process tests and the benchmark
 * (not a test itself).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { WriterChildConfig, WriterChildResult } from './postgres-writer-child.test.js';

export type { WriterChildConfig, WriterChildResult };

const child = fileURLToPath(new URL('./postgres-writer-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

interface Running {
  readonly process: ChildProcess;
  readonly ready: Promise<void>;
  readonly result: Promise<WriterChildResult>;
}

function start(config: WriterChildConfig, timeoutMs: number): Running {
  const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.startsWith('ready\n')) markReady();
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const result = new Promise<WriterChildResult>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      markReady();
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as WriterChildResult);
      else reject(new Error(`writer process ${config.writerId} ended with ${code ?? signal}: ${stderr.slice(-2000)}`));
    });
  });
  return { process: proc, ready, result };
}

/** Runs one process per config; all begin appending together once each is connected. */
export async function runWriterProcesses(configs: readonly WriterChildConfig[], timeoutMs = 300_000): Promise<WriterChildResult[]> {
  const running = configs.map((config) => start(config, timeoutMs));
  await Promise.all(running.map((r) => r.ready));
  for (const r of running) r.process.stdin?.end('go\n');
  return Promise.all(running.map((r) => r.result));
}
