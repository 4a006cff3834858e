/**
 * The data-directory lock of the embedded store (issue 10, item 2): two
 * processes on one PGlite directory used to overwrite each other's pages and
 * lose acknowledged appends. Now the second fails at once naming the holder;
 * the directory is free again after a close, and after a holder that died
 * without closing (a stale lock).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDataflowError } from '@dataflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { DATA_DIR_LOCK_FILE, lockDataDirectory } from './data-dir-lock.js';
import { createPglitePersistence } from './pglite-persistence.js';

const childFile = fileURLToPath(new URL('./data-dir-lock-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');
const dirs: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dataflow-pglite-lock-'));
  dirs.push(dir);
  return dir;
}

interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  /** The next JSON line the child prints. */
  next(): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

function child(dir: string): Child {
  const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, childFile, dir], { stdio: 'pipe' });
  children.push(proc);
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let rest = '';
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  proc.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) {
      const waiter = waiting.shift();
      if (waiter === undefined) lines.push(part);
      else waiter(part);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    process: proc,
    exited,
    next: () =>
      Promise.race([
        new Promise<string>((resolve) => {
          const line = lines.shift();
          if (line === undefined) waiting.push(resolve);
          else resolve(line);
        }),
        exited.then((code) => {
          throw new Error(`the child exited (${code}) without a line: ${stderr}`);
        }),
      ]).then((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

afterEach(async () => {
  for (const proc of children.splice(0)) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('the PGlite data-directory lock', () => {
  it('refuses a second process at once, naming the holder, and frees the directory when the holder closes', { timeout: 120_000 }, async () => {
    const dir = await dataDir();
    const first = child(dir);
    expect(await first.next()).toEqual({ opened: first.process.pid });
    first.process.stdin.write('a\n');
    expect(await first.next()).toEqual({ appended: 1 });

    const second = child(dir);
    const refused = await second.next();
    expect(refused['tag']).toBe('persistence/data-dir-locked');
    expect(refused['message']).toContain(`in use by process ${first.process.pid} on ${hostname()}`);
    expect(await second.exited).toBe(3);

    // The holder was not disturbed: it goes on appending where it was.
    first.process.stdin.write('b\n');
    expect(await first.next()).toEqual({ appended: 2 });
    first.process.stdin.end();
    expect(await first.exited).toBe(0);

    const third = child(dir);
    expect(await third.next()).toEqual({ opened: third.process.pid });
    third.process.stdin.end('c\n');
    expect(await third.next()).toEqual({ appended: 3 });
    expect(await third.exited).toBe(0);
  });

  it('takes over the lock of a holder that was killed', { timeout: 120_000 }, async () => {
    const dir = await dataDir();
    const killed = child(dir);
    expect(await killed.next()).toEqual({ opened: killed.process.pid });
    killed.process.kill('SIGKILL');
    await killed.exited;
    const left = JSON.parse(await readFile(join(dir, DATA_DIR_LOCK_FILE), 'utf8')) as { pid: number };
    expect(left.pid).toBe(killed.process.pid);

    const next = child(dir);
    expect(await next.next()).toEqual({ opened: next.process.pid });
    next.process.stdin.end();
    expect(await next.exited).toBe(0);
  });

  it('refuses a second store on the directory in the same process until the first is closed', { timeout: 60_000 }, async () => {
    const dir = await dataDir();
    const first = await createPglitePersistence({ dataDir: dir });
    const refused = await createPglitePersistence({ dataDir: dir }).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'persistence/data-dir-locked')).toBe(true);
    expect((refused as Error).message).toContain(`in use by process ${process.pid}`);
    await first.close();
    const second = await createPglitePersistence({ dataDir: dir });
    await second.close();
  });

  it('treats a lock whose pid now belongs to a later process as stale, and an unreadable lock file as damage', async () => {
    const dir = await dataDir();
    const path = join(dir, DATA_DIR_LOCK_FILE);
    // This very pid, but a process start time that is not ours: the holder died and its pid was reused.
    await writeFile(path, JSON.stringify({ pid: process.pid, hostname: hostname(), processStart: 1, since: '2020-01-01T00:00:00.000Z', token: 'old' }));
    const lock = await lockDataDirectory(dir);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ pid: process.pid });
    await lock.release();
    await expect(readFile(path, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });

    await writeFile(path, 'not json');
    await expect(lockDataDirectory(dir)).rejects.toThrow(/is locked \(its lock file is not a DataFlow lock\)/);
  });
});
