/**
 * Memory of an embedded journal. Creating a new PGlite data directory runs
 * initdb in a second, temporary PGlite instance inside the same process; the
 * WebAssembly memory it grew stays in the process's resident set long after
 * (measured: a node that created its directory held about 800 MB, one that
 * opened an existing directory about 400 MB). `initializeDataDirectory` runs
 * that step in a short-lived child process instead, and
 * `pgliteStartParams` lowers Postgres' `shared_buffers` (128 MB by default,
 * all of it inside the WebAssembly heap) for a journal that appends and
 * re-reads recent rows.
 */
import { PGlite } from '@electric-sql/pglite';
import { execFile } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The child's program: create the directory with PGlite and close it. Plain JavaScript, so no loader is needed. */
const INIT_PROGRAM = `
const [entry, dataDir] = process.argv.slice(1);
const mod = await import(entry);
const PGlite = mod.PGlite ?? mod.default.PGlite;
const db = await PGlite.create({ dataDir });
await db.close();
`;

/** Whether `dataDir` already holds a Postgres data directory. */
async function initialized(dataDir: string): Promise<boolean> {
  try {
    await access(join(dataDir, 'PG_VERSION'));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Creates the PGlite data directory `dataDir` in a child process when it does
 * not exist yet; does nothing for an existing one.
 *
 * @example
 * ```ts
 * await initializeDataDirectory('./data/journal');
 * const db = await PGlite.create({ dataDir: './data/journal', startParams: pgliteStartParams({ sharedBuffersMb: 16 }) });
 * ```
 */
export async function initializeDataDirectory(dataDir: string, options: { readonly timeoutMs?: number } = {}): Promise<void> {
  if (await initialized(dataDir)) return;
  await mkdir(dataDir, { recursive: true });
  const entry = pathToFileURL(createRequire(import.meta.url).resolve('@electric-sql/pglite')).href;
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--eval', INIT_PROGRAM, entry, dataDir],
      { timeout: options.timeoutMs ?? 120_000, env: process.env },
      (error, _stdout, stderr) => {
        if (error === null) resolve();
        else reject(new Error(`initializing the PGlite data directory ${dataDir} failed: ${stderr.trim() || error.message}`, { cause: error }));
      },
    );
  });
}

/** Options of {@link pgliteStartParams}. */
export interface PgliteMemoryOptions {
  /** Postgres' `shared_buffers` in MiB (Postgres' default is 128). */
  readonly sharedBuffersMb?: number;
}

/**
 * PGlite's own start parameters plus the memory settings given.
 *
 * @example
 * ```ts
 * pgliteStartParams({ sharedBuffersMb: 16 }); // [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB']
 * ```
 */
export function pgliteStartParams(options: PgliteMemoryOptions): string[] {
  const params = [...PGlite.defaultStartParams];
  if (options.sharedBuffersMb !== undefined) {
    if (!Number.isInteger(options.sharedBuffersMb) || options.sharedBuffersMb < 1) {
      throw new RangeError(`sharedBuffersMb must be a positive integer, got ${options.sharedBuffersMb}`);
    }
    params.push('-c', `shared_buffers=${options.sharedBuffersMb}MB`);
  }
  return params;
}
