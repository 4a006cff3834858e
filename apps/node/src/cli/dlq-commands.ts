/**
 * `dataflow dlq peek|replay|purge <pipeline>`: a pipeline's dead-letter queue
 * through the node's admin API (`/api/v1/pipelines/{id}/dead-letters`, see
 * `routes-dead-letters.ts`), with the connection flags and exit codes of the
 * other admin commands: 0 done, 1 the node refused (or a replay left letters
 * behind, each listed with the reason), 69 unreachable, 78 bad usage.
 */
import type { Command } from 'commander';
import { AdminRequestError, adminCommandKit, request, table } from './admin-commands.js';
import type { CliIo } from './cli.js';
import { CliUsageError } from './migrate-command.js';

interface Letter {
  readonly id: number;
  readonly stage: string;
  readonly stageName: string;
  readonly error: { readonly message: string; readonly retriable: boolean };
  readonly failedAt: string;
}

interface Page {
  readonly table: string;
  readonly total: number;
  readonly letters: readonly Letter[];
  readonly next: number | null;
}

interface Replay {
  readonly replayed: number;
  readonly duplicate: boolean;
  readonly batchId?: string;
  readonly skipped: readonly { readonly id: number; readonly reason: string }[];
}

const MAX_PER_REQUEST = 500;

/** `--ids 1,2,3` as the list the API takes; a usage error (78) otherwise. */
function parseIds(text: string): number[] {
  if (!/^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15})*$/.test(text)) throw new CliUsageError('--ids', `expects letter ids separated by commas, e.g. 3,4,9; got ${JSON.stringify(text)}`);
  const ids = [...new Set(text.split(',').map(Number))];
  if (ids.length > MAX_PER_REQUEST) throw new CliUsageError('--ids', `takes at most ${MAX_PER_REQUEST} ids at a time; got ${ids.length}`);
  return ids;
}

function parseCount(flag: string, text: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < 1 || n > MAX_PER_REQUEST) throw new CliUsageError(flag, `expects a whole number from 1 to ${MAX_PER_REQUEST}; got ${JSON.stringify(text)}`);
  return n;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * Adds `dlq peek|replay|purge` to `program`.
 *
 * @example
 * ```ts
 * addDeadLetterCommands(program, io, (action) => action());
 * await program.parseAsync(['dlq', 'replay', 'orders', '--ids', '3,4'], { from: 'user' });
 * ```
 */
export function addDeadLetterCommands(program: Command, io: CliIo, run: (action: () => Promise<void>) => Promise<void>): void {
  const { connection, print, withConnection } = adminCommandKit(io);
  const path = (pipeline: string): string => `/api/v1/pipelines/${encodeURIComponent(pipeline)}/dead-letters`;
  const dlq = program.command('dlq').description("A pipeline's dead-letter queue (in the node's database): look at it, replay it through the pipeline, purge it");

  withConnection(
    dlq
      .command('peek <pipeline>')
      .description('The oldest dead letters of a pipeline with the reason each failed, and how many there are')
      .option('--limit <n>', `letters to show (1-${MAX_PER_REQUEST})`, '20')
      .option('--after <id>', 'letters after this id (the next page)'),
  ).action(async (pipeline: string, flags: { limit: string; after?: string }, command: Command) =>
    run(async () => {
      const limit = parseCount('--limit', flags.limit);
      if (flags.after !== undefined && !/^[0-9]{1,16}$/.test(flags.after)) throw new CliUsageError('--after', `expects one letter id; got ${JSON.stringify(flags.after)}`);
      const after = flags.after === undefined ? '' : `&after=${flags.after}`;
      const page = await request<Page>(connection(command), 'GET', `${path(pipeline)}?limit=${limit}${after}`);
      print(command, page, () => {
        if (page.total === 0) return `no dead letters for pipeline ${pipeline} (${page.table})\n`;
        const rows = page.letters.map((l) => [String(l.id), l.stage, l.stageName, l.failedAt, oneLine(l.error.message, 100)]);
        const more = page.next === null ? '' : `; next page: --after ${page.next}`;
        return `${table([['ID', 'STAGE', 'AT', 'FAILED AT', 'REASON'], ...rows])}${page.letters.length} of ${page.total} dead letters of pipeline ${pipeline} (${page.table})${more}\n`;
      });
    }),
  );

  withConnection(
    dlq
      .command('replay <pipeline>')
      .description(
        'Push dead letters back through the running pipeline (its transforms and sink) and delete them once done; letters that cannot be replayed stay, with the reason (exit 1)',
      )
      .option('--ids <ids>', 'the letters, e.g. 3,4,9 (default: the oldest --limit)')
      .option('--limit <n>', `the oldest n letters (1-${MAX_PER_REQUEST}, default 100)`)
      .option('--rerun-transforms', 'also replay records that already went through some transforms (they run through every transform again)'),
  ).action(async (pipeline: string, flags: { ids?: string; limit?: string; rerunTransforms?: boolean }, command: Command) =>
    run(async () => {
      if (flags.ids !== undefined && flags.limit !== undefined) throw new CliUsageError('--limit', 'cannot be given with --ids');
      const body = {
        ...(flags.ids === undefined ? {} : { ids: parseIds(flags.ids) }),
        ...(flags.limit === undefined ? {} : { limit: parseCount('--limit', flags.limit) }),
        ...(flags.rerunTransforms === true ? { rerunTransforms: true } : {}),
      };
      const answer = await request<Replay>(connection(command), 'POST', `${path(pipeline)}/replay`, body);
      print(command, answer, () => {
        const done =
          answer.replayed === 0
            ? `replayed no dead letters of pipeline ${pipeline}\n`
            : answer.duplicate
              ? `the ${answer.replayed} dead letters of pipeline ${pipeline} had been replayed before (batch ${answer.batchId ?? '?'}); deleted them\n`
              : `replayed ${answer.replayed} dead letters through pipeline ${pipeline} (batch ${answer.batchId ?? '?'}) and deleted them\n`;
        return `${done}${answer.skipped.map((s) => `left ${s.id}: ${s.reason}\n`).join('')}`;
      });
      if (answer.skipped.length > 0) throw new AdminRequestError(409, `${answer.skipped.length} dead letters of pipeline ${pipeline} were left in the queue (see above)`);
    }),
  );

  withConnection(
    dlq
      .command('purge <pipeline>')
      .description("Delete a pipeline's dead letters: all, some (--ids) or those that failed before a time (--before)")
      .option('--ids <ids>', 'only these letters, e.g. 3,4,9')
      .option('--before <time>', 'only letters that failed before this time (ISO 8601, e.g. 2026-12-01T00:00:00Z)'),
  ).action(async (pipeline: string, flags: { ids?: string; before?: string }, command: Command) =>
    run(async () => {
      if (flags.ids !== undefined && flags.before !== undefined) throw new CliUsageError('--before', 'cannot be given with --ids');
      if (flags.before !== undefined && Number.isNaN(Date.parse(flags.before))) throw new CliUsageError('--before', `expects an ISO 8601 time; got ${JSON.stringify(flags.before)}`);
      const query =
        flags.ids !== undefined ? `?ids=${parseIds(flags.ids).join(',')}` : flags.before !== undefined ? `?before=${encodeURIComponent(new Date(flags.before).toISOString())}` : '';
      const answer = await request<{ purged: number }>(connection(command), 'DELETE', `${path(pipeline)}${query}`);
      print(command, answer, () => `purged ${answer.purged} dead letters of pipeline ${pipeline}\n`);
    }),
  );
}
