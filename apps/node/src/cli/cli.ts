/**
 * The `dataflow` command line: argument parsing, help and usage errors by
 * commander; `start` (a node until a signal), `migrate`, and `pipelines` /
 * `projections` / `dlq` (clients of a running node's admin API, see
 * `admin-commands.ts` and `dlq-commands.ts`). `runCli` returns the exit code
 * instead of exiting, so tests and embedders can call it: 0 done, 78
 * (EX_CONFIG) a bad flag or setting (the field is named), 1 a failure (with
 * its cause). Secrets (a password in the Postgres URL) are never printed.
 */
import { isDataflowError } from '@dataflow/core';
import { CommanderError, Command, Option } from 'commander';
import type { SignalWatch } from '../run-node.js';
import { watchSignals } from '../signals.js';
import { AdminRequestError, addAdminCommands, NodeUnreachableError } from './admin-commands.js';
import { addDeadLetterCommands } from './dlq-commands.js';
import { CliUsageError, migrateConfig, runMigrate, type MigrateFlags } from './migrate-command.js';

/** Exit code of a bad flag or setting (sysexits' EX_CONFIG, as the node uses). */
export const EX_CONFIG = 78;
/** Exit code when the node's admin API cannot be reached (sysexits' EX_UNAVAILABLE). */
export const EX_UNAVAILABLE = 69;

/** Where the command line writes; `process.stdout` / `process.stderr` by default. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
};

/**
 * Runs the command line `argv` (without the node and script paths) and
 * resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(['migrate', '--journal', 'postgres', '--status']);
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo, signals?: SignalWatch): Promise<number> {
  // Whatever is printed passes through here: a password given anywhere on the command line or in the URL variable is masked.
  const secrets = secretsOf(argv, io.env);
  const mask = (text: string): string => secrets.reduce((t, secret) => t.replaceAll(secret, '***'), text);
  const out = (text: string): void => io.out(mask(text));
  const err = (text: string): void => io.err(mask(text));
  let exitCode = 0;
  const program = new Command('dataflow')
    .description('DataFlow node tools')
    .exitOverride()
    .configureOutput({ writeOut: out, writeErr: err })
    .showHelpAfterError('(run with --help for usage)');
  program
    .command('start')
    .description(
      'Run a node until SIGINT or SIGTERM: the pipelines of the configuration file (--config, $DATAFLOW_CONFIG, else ./dataflow.yaml;\n' +
        'without one, the demo on embedded storage under ./data), the admin API, the console and the metrics.\n' +
        'Exit codes: 0 after a clean stop, 78 for bad configuration (the field is named), 1 for any other failure.',
    )
    .option('--config <file>', 'the YAML configuration file (see docs-config.md)')
    .action(async (flags: { config?: string }) => {
      const { runNode } = await import('../run-node.js');
      exitCode = await runNode(signals ?? watchSignals(), flags.config === undefined ? {} : { configFile: flags.config });
    });
  program
    .command('migrate')
    .description(
      'Apply the journal schema migrations this release needs (what a node refuses to start without), or list them.\n' +
        'Safe to run again and concurrently: only missing migrations are applied, one run at a time.',
    )
    .addOption(new Option('--journal <store>', 'the journal store').choices(['postgres', 'cassandra']).makeOptionMandatory())
    .option('--url <url>', 'Postgres: postgres://user[:password]@host[:port]/database (default: $DATAFLOW_POSTGRES_URL)')
    .option('--schema <name>', 'Postgres: the schema (default: $DATAFLOW_POSTGRES_SCHEMA, else dataflow)')
    .option('--contact-points <hosts>', 'Cassandra: host[:port],... (default: $DATAFLOW_CASSANDRA_CONTACT_POINTS, else 127.0.0.1:9042)')
    .option('--keyspace <name>', 'Cassandra: the keyspace (default: $DATAFLOW_CASSANDRA_KEYSPACE, else dataflow)')
    .option('--local-dc <name>', 'Cassandra: the local data center (default: $DATAFLOW_CASSANDRA_LOCAL_DC, else datacenter1)')
    .option('--replication-factor <n>', 'Cassandra: SimpleStrategy factor of a keyspace this run creates (default: $DATAFLOW_CASSANDRA_REPLICATION_FACTOR, else 1)')
    .option('--data-centers <dc:n,...>', 'Cassandra: NetworkTopologyStrategy factors of a keyspace this run creates (default: $DATAFLOW_CASSANDRA_DATA_CENTERS)')
    .addOption(new Option('--status', 'list applied and pending migrations; change nothing').conflicts('dryRun'))
    .option('--dry-run', 'list what migrate would apply; change nothing')
    .action(async (flags: MigrateFlags) => {
      const config = migrateConfig(flags, io.env);
      const mode = flags.status === true ? 'status' : flags.dryRun === true ? 'dry-run' : 'apply';
      await runMigrate(config, mode, { out: (line) => out(`${line}\n`) });
    });
  addAdminCommands(program, { out, err, env: io.env }, (action) => action());
  addDeadLetterCommands(program, { out, err, env: io.env }, (action) => action());
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    exitCode = exitCodeOf(error, err);
  }
  return exitCode;
}

function exitCodeOf(error: unknown, err: (text: string) => void): number {
  if (error instanceof CommanderError) {
    // commander printed the message already; help and --version exit 0.
    return error.exitCode === 0 ? 0 : EX_CONFIG;
  }
  if (error instanceof CliUsageError) {
    err(`dataflow: ${error.message}\n`);
    return EX_CONFIG;
  }
  if (error instanceof NodeUnreachableError) {
    err(`dataflow: ${error.message}\n`);
    return EX_UNAVAILABLE;
  }
  if (error instanceof AdminRequestError) {
    err(`dataflow: ${error.message}\n`);
    return 1;
  }
  err(`dataflow: failed: ${describe(error)}\n`);
  return 1;
}

/** The error and its causes, one after another (`AggregateError`s list their members). */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0) {
      parts.push(current.errors.map((e) => describe(e)).join('; '));
      break;
    }
    const tag = isDataflowError(current) ? ` [${current.tag}]` : '';
    const text = current instanceof Error ? current.message || current.name : JSON.stringify(current);
    parts.push(`${text}${tag}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': caused by: ');
}

function secretsOf(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  const secrets: string[] = [];
  // A token given with --token or in the environment.
  const tokenAt = argv.indexOf('--token');
  for (const token of [tokenAt >= 0 ? argv[tokenAt + 1] : undefined, ...argv.filter((a) => a.startsWith('--token=')).map((a) => a.slice(8)), env['DATAFLOW_AUTH_TOKEN']]) {
    if (token !== undefined && token.length >= 3) secrets.push(token);
  }
  for (const text of [...argv, env['DATAFLOW_POSTGRES_URL'] ?? '']) {
    for (const match of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:([^@\s]+)@/gi)) {
      const password = match[1] as string;
      secrets.push(password);
      try {
        secrets.push(decodeURIComponent(password));
      } catch {
        // Not percent-encoded: the raw form is masked already.
      }
    }
  }
  // The longest first, so that a secret containing another is masked whole.
  return [...new Set(secrets)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
}
