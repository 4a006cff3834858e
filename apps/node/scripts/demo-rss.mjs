/**
 * Measures the resident memory of the demo node (`npm start`) on the
 * embedded journal: a first start (the data directory is created) and a
 * second start on the same directory, each sampled every second for
 * `--seconds` (default 20) after the first batch line, then stopped with
 * SIGINT. Prints one JSON line per run with the peak and last RSS in MiB.
 *
 *   node apps/node/scripts/demo-rss.mjs [--seconds 20]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../../..');
const secondsArg = process.argv.indexOf('--seconds');
const seconds = secondsArg === -1 ? 20 : Number(process.argv[secondsArg + 1]);

async function rssMiB(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/^VmRSS:\s*(\d+) kB$/m.exec(status)[1]) / 1024);
}

async function measure(dataDir, run) {
  // The command of the root `start` script.
  const args = ['--max-semi-space-size=2', '--import', './apps/node/bin/early-signals.mjs', '--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, DATAFLOW_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((done) => child.on('exit', (code) => done(code)));
  await new Promise((done, fail) => {
    child.stdout.once('data', done);
    exited.then((code) => fail(new Error(`the node exited (${code}) before its first batch`)));
  });
  child.stdout.resume();
  const samples = [];
  for (let i = 0; i < seconds; i++) {
    await new Promise((done) => setTimeout(done, 1_000));
    samples.push(await rssMiB(child.pid));
  }
  child.kill('SIGINT');
  const code = await exited;
  process.stdout.write(`${JSON.stringify({ run, peakRssMiB: Math.max(...samples), lastRssMiB: samples.at(-1), seconds, exitCode: code })}\n`);
}

const dataDir = await mkdtemp(join(tmpdir(), 'dataflow-demo-rss-'));
try {
  await measure(dataDir, 'first start (new data directory)');
  await measure(dataDir, 'second start (existing data directory)');
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
