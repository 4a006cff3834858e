/**
 * An exclusive lock on a PGlite data directory. PGlite runs Postgres inside
 * one process and knows nothing of other processes: two of them on one
 * directory overwrite each other's pages and lose acknowledged appends. The
 * lock is a file `<dataDir>/dataflow.lock` holding the holder's pid, host and
 * process start time, created atomically (a hard link of a fully written
 * temporary file, which fails when the lock exists). A lock whose holder is
 * gone (no such pid on this host, or a pid reused by a newer process) is
 * stale and taken over; a live holder makes `lockDataDirectory` fail at once
 * with `DataDirectoryLockedError`, naming it. The lock is released by
 * `release()` and, failing that, when the process exits.
 */
import { DataflowError } from '@dataflow/core';
import { randomUUID } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** The name of the lock file inside the data directory. */
export const DATA_DIR_LOCK_FILE = 'dataflow.lock';

/** Who holds a data directory. */
export interface DataDirectoryHolder {
  readonly pid: number;
  readonly hostname: string;
  /** Start time of the holder process (Linux: clock ticks after boot, from /proc); absent elsewhere. */
  readonly processStart?: number;
  /** ISO time at which the lock was taken. */
  readonly since: string;
  /** Unique per acquisition: release removes the lock only while it is still this one. */
  readonly token: string;
}

/**
 * Another live process holds the data directory.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'persistence/data-dir-locked')) logger.error(error.message); // names the holder's pid
 * ```
 */
export class DataDirectoryLockedError extends DataflowError<'persistence/data-dir-locked'> {
  constructor(
    readonly dataDir: string,
    readonly holder: DataDirectoryHolder | undefined,
    detail?: string,
  ) {
    super(
      'persistence/data-dir-locked',
      holder === undefined
        ? `The data directory ${dataDir} is locked (${detail ?? 'unreadable lock file'}): another process uses it; remove ${join(dataDir, DATA_DIR_LOCK_FILE)} only if none does`
        : `The data directory ${dataDir} is in use by process ${holder.pid} on ${holder.hostname} (since ${holder.since}); stop that process first, or use another directory`,
      { retriable: false },
    );
  }
}

/** A held lock. */
export interface DataDirectoryLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

/** Start time of a process in clock ticks after boot (field 22 of /proc/<pid>/stat), or undefined off Linux. */
function processStartOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are space-separated.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `holder` still runs. A holder on another host is assumed alive (a shared file system). */
function isAlive(holder: DataDirectoryHolder): boolean {
  if (holder.hostname !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the pid exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.processStart === undefined) return true;
  const start = processStartOf(holder.pid);
  // The pid was reused by a process started later than the holder.
  return start === undefined || start === holder.processStart;
}

function parseHolder(text: string): DataDirectoryHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<DataDirectoryHolder>;
    if (typeof value.pid !== 'number' || typeof value.hostname !== 'string' || typeof value.token !== 'string') return undefined;
    return value as DataDirectoryHolder;
  } catch {
    return undefined;
  }
}

async function readHolder(path: string): Promise<{ text: string; holder: DataDirectoryHolder | undefined } | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    return { text, holder: parseHolder(text) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const MAX_ATTEMPTS = 10;

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

/**
 * Takes the lock of `dataDir` (created if missing) for this process.
 *
 * @example
 * ```ts
 * const lock = await lockDataDirectory('./data/journal'); // throws DataDirectoryLockedError naming the holder
 * try { ... } finally { await lock.release(); }
 * ```
 */
export async function lockDataDirectory(dataDir: string): Promise<DataDirectoryLock> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, DATA_DIR_LOCK_FILE);
  const processStart = processStartOf(process.pid);
  const mine: DataDirectoryHolder = {
    pid: process.pid,
    hostname: hostname(),
    ...(processStart === undefined ? {} : { processStart }),
    since: new Date().toISOString(),
    token: randomUUID(),
  };
  const content = JSON.stringify(mine);
  const temporary = `${path}.${mine.token}.tmp`;
  await writeFile(temporary, content, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await link(temporary, path);
        return held(path, content);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const found = await readHolder(path);
      if (found === undefined) continue; // released meanwhile
      if (found.holder === undefined) {
        // A holder writes its file completely before linking it, so an unreadable lock is damage, not a lock being taken.
        throw new DataDirectoryLockedError(dataDir, undefined, 'its lock file is not a DataFlow lock');
      }
      if (isAlive(found.holder)) throw new DataDirectoryLockedError(dataDir, found.holder);
      await takeOverStale(path, found.text);
    }
    throw new DataDirectoryLockedError(dataDir, undefined, `still contended after ${MAX_ATTEMPTS} attempts`);
  } finally {
    await unlink(temporary).catch(ignoreMissing);
  }
}

/**
 * Removes a stale lock without removing a fresh one another process may have
 * taken since it was read: the file is first moved aside, then compared; a
 * fresh lock moved by mistake is put back (a link, which never overwrites).
 */
async function takeOverStale(path: string, staleText: string): Promise<void> {
  const aside = `${path}.${randomUUID()}.stale`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readFile(aside, 'utf8');
  // EEXIST: yet another process locked it meanwhile; ours then was stale after all, or theirs wins.
  if (moved !== staleText) await link(aside, path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  await unlink(aside);
}

function held(path: string, content: string): DataDirectoryLock {
  let released = false;
  const releaseSync = (): void => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(path, 'utf8') === content) unlinkSync(path);
    } catch (error) {
      // Gone already: nothing to release. Anything else surfaces as the exit's error.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  };
  // A process that exits without closing its store (an uncaught error, process.exit) still frees the directory.
  process.once('exit', releaseSync);
  return {
    path,
    release: async () => {
      process.removeListener('exit', releaseSync);
      if (released) return;
      released = true;
      const found = await readHolder(path);
      if (found?.text === content) await unlink(path);
    },
  };
}
