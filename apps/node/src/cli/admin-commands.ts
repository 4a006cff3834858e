/**
 * The `dataflow pipelines ...` and `dataflow projections ...` commands: a
 * client of a running node's admin API (`--url`, default
 * `$DATAFLOW_API_URL` or `http://127.0.0.1:8080`; `--token`, default
 * `$DATAFLOW_AUTH_TOKEN`). Human-readable tables by default, the API's JSON
 * with `--json`. Exit codes: 0 done, 1 the node refused or failed (its
 * message is printed), 69 the node cannot be reached, 78 a usage error.
 */
import { DataflowError } from '@dataflow/core';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { CliIo } from './cli.js';

/** The node answered with an error. */
export class AdminRequestError extends DataflowError<'cli/request-failed'> {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('cli/request-failed', message, { retriable: status === 503 });
  }
}

/** The node could not be reached. */
export class NodeUnreachableError extends DataflowError<'cli/node-unreachable'> {
  constructor(url: string, cause: unknown) {
    super('cli/node-unreachable', `cannot reach the node at ${url} (${cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause)}); is it running? (--url or DATAFLOW_API_URL)`, {
      retriable: true,
      cause,
    });
  }
}

export interface Connection {
  readonly url: string;
  readonly token: string | undefined;
}

interface GlobalFlags {
  readonly url?: string;
  readonly token?: string;
  readonly json?: boolean;
}

export async function request<T>(connection: Connection, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  return (await answered<T>(connection, method, path, body)).body;
}

/** `request`, with the HTTP status of the success (a create answers 201, or 200 when the pipeline existed with this definition). */
export async function answered<T>(connection: Connection, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: T }> {
  let response: Response;
  try {
    response = await fetch(`${connection.url}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(connection.token === undefined ? {} : { authorization: `Bearer ${connection.token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new NodeUnreachableError(connection.url, error);
  }
  const text = await response.text();
  const parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
  if (!response.ok) {
    const answer = parsed as { message?: string; details?: { field: string; message: string }[] } | undefined;
    const details = Array.isArray(answer?.details) && answer.details.length > 0 ? `\n${answer.details.map((d) => `  ${d.field}: ${d.message}`).join('\n')}` : '';
    throw new AdminRequestError(response.status, `${answer?.message ?? `HTTP ${response.status}`}${details}`);
  }
  return { status: response.status, body: parsed as T };
}

/** A definition file, YAML or JSON (by extension). */
async function readDefinition(file: string): Promise<unknown> {
  try {
    const text = await readFile(file, 'utf8');
    return extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new AdminRequestError(400, `cannot read the definition ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Rows as aligned columns (the first row is the header). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return `${rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n')}\n`;
}

interface ListedPipeline {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly sourceType: string;
  readonly sinkType: string;
  readonly totalRecords: number;
  readonly failedRecords: number;
}

interface Projection {
  readonly name: string;
  readonly state: string;
  readonly eventsApplied: number;
  readonly lag: { readonly kind: string; readonly events?: number; readonly seconds?: number };
  readonly rebuild: { readonly state: string; readonly done: number; readonly total: number; readonly error?: string } | null;
}

/** What every admin command shares: the connection flags (`--url`, `--token`), `--json` and printing. */
export interface AdminCommandKit {
  /** The node's API and token from the command's flags, else the environment. */
  readonly connection: (command: Command) => Connection;
  readonly json: (command: Command) => boolean;
  /** Prints the API's answer with `--json`, else the human form. */
  readonly print: (command: Command, value: unknown, human: () => string) => void;
  /** Adds `--url`, `--token` and `--json` to `command`. */
  readonly withConnection: (command: Command) => Command;
}

/**
 * The shared parts of the admin commands, for `io`.
 *
 * @example
 * ```ts
 * const { connection, print, withConnection } = adminCommandKit(io);
 * withConnection(program.command('ping')).action((_flags, command: Command) => run(async () => print(command, await request(connection(command), 'GET', '/health'), () => 'ok\n')));
 * ```
 */
export function adminCommandKit(io: CliIo): AdminCommandKit {
  const json = (command: Command): boolean => command.optsWithGlobals<GlobalFlags>().json === true;
  return {
    connection: (command) => {
      const flags = command.optsWithGlobals<GlobalFlags>();
      const url = (flags.url ?? io.env['DATAFLOW_API_URL'] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
      return { url, token: flags.token ?? io.env['DATAFLOW_AUTH_TOKEN'] };
    },
    json,
    print: (command, value, human) => io.out(json(command) ? `${JSON.stringify(value, null, 2)}\n` : human()),
    withConnection: (command) =>
      command
        .option('--url <url>', 'the node admin API (default: $DATAFLOW_API_URL, else http://127.0.0.1:8080)')
        .option('--token <token>', 'bearer token for a node off loopback (default: $DATAFLOW_AUTH_TOKEN)')
        .option('--json', 'print the API answer as JSON (for scripts)'),
  };
}

/**
 * Adds the admin commands to `program`; each sets the exit code through `done`.
 */
export function addAdminCommands(program: Command, io: CliIo, run: (action: () => Promise<void>) => Promise<void>): void {
  const { connection, json, print, withConnection } = adminCommandKit(io);

  const pipelines = program.command('pipelines').description("Manage a running node's pipelines through its admin API");
  withConnection(pipelines.command('list').description('List pipelines').option('--status <status>', 'only pipelines in this status')).action(
    async (flags: { status?: string }, command: Command) =>
      run(async () => {
        const query = flags.status === undefined ? '' : `?status=${encodeURIComponent(flags.status)}`;
        const answer = await request<{ pipelines: ListedPipeline[] }>(connection(command), 'GET', `/api/v1/pipelines${query}`);
        print(command, answer, () =>
          answer.pipelines.length === 0
            ? 'no pipelines\n'
            : table([['ID', 'NAME', 'STATUS', 'SOURCE', 'SINK', 'RECORDS', 'FAILED'], ...answer.pipelines.map((p) => [p.id, p.name, p.status, p.sourceType, p.sinkType, String(p.totalRecords), String(p.failedRecords)])]),
        );
      }),
  );
  withConnection(
    pipelines
      .command('create')
      .description('Create a pipeline from a definition file (YAML or JSON)')
      .requiredOption('-f, --file <file>', 'the definition')
      .option('--id <id>', 'the pipeline id (default: a new UUID)')
      .option('--start', 'start it once created'),
  ).action(async (flags: { file: string; id?: string; start?: boolean }, command: Command) =>
    run(async () => {
      const definition = await readDefinition(flags.file);
      const { status, body: created } = await answered<{ id: string; status: string }>(connection(command), 'POST', '/api/v1/pipelines', {
        definition,
        ...(flags.id === undefined ? {} : { id: flags.id }),
        ...(flags.start === true ? { start: true } : {}),
      });
      // 200: the id exists with this very definition (a create run again, or whose first answer was lost).
      print(command, created, () => (status === 200 ? `pipeline ${created.id} exists with this definition (${created.status})\n` : `created pipeline ${created.id} (${created.status})\n`));
    }),
  );
  for (const action of ['start', 'stop', 'pause', 'resume', 'reset', 'restart'] as const) {
    withConnection(pipelines.command(`${action} <id>`).description(`${action[0]?.toUpperCase()}${action.slice(1)} a pipeline`)).action(async (id: string, _flags: unknown, command: Command) =>
      run(async () => {
        const state = await request<{ id: string; status: string }>(connection(command), 'POST', `/api/v1/pipelines/${encodeURIComponent(id)}/${action}`);
        print(command, state, () => `pipeline ${state.id}: ${state.status}\n`);
      }),
    );
  }
  withConnection(
    pipelines.command('update <id>').description('Replace the definition of a configured or stopped pipeline (YAML or JSON; the name stays)').requiredOption('-f, --file <file>', 'the new definition'),
  ).action(async (id: string, flags: { file: string }, command: Command) =>
    run(async () => {
      const definition = await readDefinition(flags.file);
      const updated = await request<{ id: string; status: string }>(connection(command), 'PUT', `/api/v1/pipelines/${encodeURIComponent(id)}`, { definition });
      print(command, updated, () => `updated pipeline ${updated.id} (${updated.status})\n`);
    }),
  );
  withConnection(pipelines.command('reset-offsets <id>').description("Forget a stopped pipeline's source offset: its next start opens the source as a new pipeline's would")).action(
    async (id: string, _flags: unknown, command: Command) =>
      run(async () => {
        const answer = await request<{ id: string; message: string }>(connection(command), 'DELETE', `/api/v1/pipelines/${encodeURIComponent(id)}/offsets`);
        print(command, answer, () => `pipeline ${answer.id}: ${answer.message}\n`);
      }),
  );
  withConnection(pipelines.command('delete <id>').description('Delete a configured, stopped or failed pipeline (its journal keeps the history)')).action(
    async (id: string, _flags: unknown, command: Command) =>
      run(async () => {
        await request<undefined>(connection(command), 'DELETE', `/api/v1/pipelines/${encodeURIComponent(id)}`);
        print(command, { id, deleted: true }, () => `deleted pipeline ${id}\n`);
      }),
  );
  withConnection(pipelines.command('status <id>').description("A pipeline's status and metrics")).action(async (id: string, _flags: unknown, command: Command) =>
    run(async () => {
      const state = await request<{ id: string; name: string; status: string; reason?: string; metrics: Record<string, unknown>; checkpoint: unknown }>(
        connection(command),
        'GET',
        `/api/v1/pipelines/${encodeURIComponent(id)}`,
      );
      print(command, state, () =>
        table([
          ['pipeline', state.id],
          ['name', state.name],
          ['status', `${state.status}${state.reason === undefined ? '' : ` (${state.reason})`}`],
          ...Object.entries(state.metrics).map(([k, v]) => [k, String(v)]),
          ['checkpoint', JSON.stringify(state.checkpoint)],
        ]),
      );
    }),
  );

  const projections = program.command('projections').description("A running node's read-model projections");
  withConnection(projections.command('status').description('Projections with their lag and rebuild progress')).action(async (_flags: unknown, command: Command) =>
    run(async () => {
      const answer = await request<{ projections: Projection[] }>(connection(command), 'GET', '/api/v1/projections');
      print(command, answer, () =>
        table([
          ['NAME', 'STATE', 'EVENTS', 'LAG EVENTS', 'LAG S', 'REBUILD'],
          ...answer.projections.map((p) => [
            p.name,
            p.state,
            String(p.eventsApplied),
            p.lag.kind === 'known' ? String(p.lag.events) : '?',
            p.lag.kind === 'known' ? (p.lag.seconds ?? 0).toFixed(1) : '?',
            p.rebuild === null ? '' : `${p.rebuild.state} ${p.rebuild.done}/${p.rebuild.total}`,
          ]),
        ]),
      );
    }),
  );
  withConnection(projections.command('rebuild <name>').description('Rebuild a read model from the journal (shadow table, swapped in at the end), showing progress').option('--no-wait', 'return once started')).action(
    async (name: string, flags: { wait: boolean }, command: Command) =>
      run(async () => {
        const target = connection(command);
        const path = `/api/v1/projections/${encodeURIComponent(name)}`;
        await request<Projection>(target, 'POST', `${path}/rebuild`);
        if (!flags.wait) return print(command, { name, rebuild: 'started' }, () => `rebuild of ${name} started\n`);
        const bar = json(command) ? undefined : new cliProgress.SingleBar({ format: `${name} [{bar}] {value}/{total} events`, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 2_000 }, cliProgress.Presets.shades_classic);
        bar?.start(1, 0);
        for (;;) {
          const current = await request<Projection>(target, 'GET', path);
          const rebuild = current.rebuild;
          if (rebuild !== null) {
            bar?.setTotal(Math.max(rebuild.total, 1));
            bar?.update(rebuild.done);
          }
          if (rebuild?.state === 'done' || rebuild?.state === 'failed' || rebuild?.state === 'abandoned') {
            bar?.stop();
            if (rebuild.state !== 'done') throw new AdminRequestError(500, `the rebuild of ${name} ${rebuild.state === 'failed' ? 'failed' : 'was abandoned'}: ${rebuild.error ?? 'see the node log'}`);
            return print(command, current, () => `rebuilt ${name}: ${rebuild.done} events\n`);
          }
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }),
  );
}
