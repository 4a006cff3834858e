/**
 * Loads a node's configuration: the YAML file (the `--config` flag,
 * `$DATAFLOW_CONFIG`, else `./dataflow.yaml` when it exists, else none), then
 * the `DATAFLOW_*` environment variables over it (an environment variable
 * wins), validated by `config-schema.ts`, then the secrets read from their
 * files or variables. Every problem is a `NodeConfigError` naming the field
 * (`api.port in dataflow.yaml`) or the variable (`DATAFLOW_API_PORT`), all
 * problems at once; `main` exits with 78 on it.
 *
 * Without a file the node runs the built-in demo on embedded storage.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import type * as z from 'zod';
import { NodeConfigError } from '../node/node-errors.js';
import { nodeConfigSchema, type ParsedNodeConfig, type SecretInput } from './config-schema.js';

/** The configuration a node runs with: secrets resolved, paths absolute. */
export interface NodeRuntimeConfig extends Omit<ParsedNodeConfig, 'postgres' | 'cassandra' | 'redis' | 'api'> {
  readonly postgres: { readonly url?: string; readonly schema: string };
  readonly cassandra: Omit<ParsedNodeConfig['cassandra'], 'password'> & { readonly password?: string };
  readonly redis?: { readonly url: string; readonly keyPrefix: string };
  readonly api: Omit<ParsedNodeConfig['api'], 'authToken'> & { readonly authToken?: string };
  /** The file read, if any (absolute). */
  readonly source?: string;
  /** Every resolved secret, to mask wherever text leaves the process. */
  readonly secrets: readonly string[];
}

export interface LoadConfigOptions {
  /** A file given on the command line; wins over `$DATAFLOW_CONFIG`. */
  readonly file?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
}

type EnvParser = (text: string) => unknown;
const text: EnvParser = (value) => value;
const list: EnvParser = (value) => value.split(',').map((s) => s.trim()).filter((s) => s !== '');
const lower: EnvParser = (value) => value.toLowerCase();
const wholeNumber: EnvParser = (value) => (/^\d{1,15}$/.test(value) ? Number(value) : value);
const flag: EnvParser = (value) => {
  const v = value.toLowerCase();
  return v === '1' || v === 'true' ? true : v === '0' || v === 'false' ? false : value;
};
const fileRef: EnvParser = (value) => ({ file: value });
const hostAndPort: EnvParser = (value) => {
  const match = /^([^\s:]+):(\d{1,5})$/.exec(value);
  return match === null ? value : { host: match[1], port: Number(match[2]) };
};

/** `DATAFLOW_*` variable -> field path and how its text becomes a value. A `_FILE` variable names a file holding the secret. */
const ENV_FIELDS: readonly (readonly [string, readonly string[], EnvParser])[] = [
  ['DATAFLOW_NODE_ID', ['node', 'id'], text],
  ['DATAFLOW_DATA_DIR', ['node', 'dataDir'], text],
  ['DATAFLOW_SHUTDOWN_TIMEOUT_MS', ['node', 'shutdownTimeoutMs'], wholeNumber],
  ['DATAFLOW_OVERWRITE_OUTPUT', ['node', 'overwriteOutput'], flag],
  ['DATAFLOW_JOURNAL', ['journal', 'type'], lower],
  ['DATAFLOW_MIGRATE', ['journal', 'migrate'], lower],
  ['DATAFLOW_POSTGRES_URL', ['postgres', 'url'], text],
  ['DATAFLOW_POSTGRES_URL_FILE', ['postgres', 'url'], fileRef],
  ['DATAFLOW_POSTGRES_SCHEMA', ['postgres', 'schema'], text],
  ['DATAFLOW_CASSANDRA_CONTACT_POINTS', ['cassandra', 'contactPoints'], list],
  ['DATAFLOW_CASSANDRA_LOCAL_DC', ['cassandra', 'localDataCenter'], text],
  ['DATAFLOW_CASSANDRA_KEYSPACE', ['cassandra', 'keyspace'], text],
  ['DATAFLOW_CASSANDRA_USERNAME', ['cassandra', 'username'], text],
  ['DATAFLOW_CASSANDRA_PASSWORD', ['cassandra', 'password'], text],
  ['DATAFLOW_CASSANDRA_PASSWORD_FILE', ['cassandra', 'password'], fileRef],
  ['DATAFLOW_KAFKA_BROKERS', ['kafka', 'brokers'], list],
  ['DATAFLOW_KAFKA_CLIENT', ['kafka', 'client'], lower],
  ['DATAFLOW_REDIS_URL', ['redis', 'url'], text],
  ['DATAFLOW_LOG_LEVEL', ['logging', 'level'], lower],
  ['DATAFLOW_LOGSTASH_HOST', ['logging', 'logstash'], hostAndPort],
  ['DATAFLOW_API_HOST', ['api', 'host'], text],
  ['DATAFLOW_API_PORT', ['api', 'port'], wholeNumber],
  ['DATAFLOW_AUTH_TOKEN', ['api', 'authToken'], text],
  ['DATAFLOW_AUTH_TOKEN_FILE', ['api', 'authToken'], fileRef],
  ['DATAFLOW_METRICS_HOST', ['metrics', 'host'], text],
  ['DATAFLOW_METRICS_PORT', ['metrics', 'port'], wholeNumber],
  ['DATAFLOW_DEMO', ['demo'], flag],
  ['DATAFLOW_CLUSTER', ['cluster', 'enabled'], flag],
  ['DATAFLOW_CLUSTER_ADVERTISE_URL', ['cluster', 'advertiseUrl'], text],
  ['DATAFLOW_CLUSTER_SHARDS', ['cluster', 'shards'], wholeNumber],
  ['DATAFLOW_CLUSTER_PROJECTION_RANGES', ['cluster', 'projectionRanges'], wholeNumber],
  ['DATAFLOW_CLUSTER_LEASE_TTL_MS', ['cluster', 'leaseTtlMs'], wholeNumber],
];

/** Fields whose value is never repeated in an error (secrets may be written there). */
const SECRET_KEYS = new Set(['url', 'password', 'authToken']);

/** The deepest nesting a configuration file may have (a pipeline definition included). */
const MAX_DEPTH = 32;
/** The largest configuration file read. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Loads, validates and resolves the configuration.
 *
 * @example
 * ```ts
 * const config = await loadNodeConfig({ file: 'dataflow.yaml', env: process.env });
 * config.api.port; // 8080 unless the file or DATAFLOW_API_PORT says otherwise
 * ```
 */
export async function loadNodeConfig(options: LoadConfigOptions): Promise<NodeRuntimeConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env;
  const source = await configFile(options.file, env, cwd);
  const raw: Record<string, unknown> = source === undefined ? { demo: true } : await readYaml(source.path, source.setting);
  const fromEnv = new Map<string, string>();
  for (const [name, path, parse] of ENV_FIELDS) {
    const value = env[name]?.trim();
    if (value === undefined || value === '') continue;
    const key = path.join('.');
    if (fromEnv.has(key)) continue; // DATAFLOW_X comes before DATAFLOW_X_FILE in the list: with both set, the plain one wins
    setPath(raw, path, parse(value));
    fromEnv.set(key, name);
  }
  // Compatibility: a Postgres URL alone (no journal type anywhere) means the journal is on that server.
  if (fromEnv.has('postgres.url') && !fromEnv.has('journal.type') && getPath(raw, ['journal', 'type']) === undefined) {
    setPath(raw, ['journal', 'type'], 'postgres');
  }
  const parsed = nodeConfigSchema.safeParse(raw);
  if (!parsed.success) throw configError(parsed.error.issues, raw, fromEnv, source?.path);
  return resolveConfig(parsed.data, { env, cwd, fromEnv, source: source?.path });
}

async function configFile(
  flagFile: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Promise<{ path: string; setting: string } | undefined> {
  const given = flagFile ?? (env['DATAFLOW_CONFIG']?.trim() || undefined);
  if (given !== undefined) return { path: resolve(cwd, given), setting: flagFile === undefined ? 'DATAFLOW_CONFIG' : '--config' };
  const implicit = resolve(cwd, 'dataflow.yaml');
  try {
    await stat(implicit);
    return { path: implicit, setting: 'dataflow.yaml' };
  } catch {
    return undefined;
  }
}

async function readYaml(path: string, setting: string): Promise<Record<string, unknown>> {
  let content: string;
  try {
    const info = await stat(path);
    if (info.size > MAX_FILE_BYTES) throw new Error(`it has ${info.size} bytes; at most ${MAX_FILE_BYTES} are read`);
    content = await readFile(path, 'utf8');
  } catch (error) {
    throw new NodeConfigError(setting, `cannot read the configuration file ${path} (${messageOf(error)})`, { cause: error });
  }
  const doc = parseDocument(content, { uniqueKeys: true, prettyErrors: false });
  const problem = doc.errors[0];
  if (problem !== undefined) {
    throw new NodeConfigError(`${basename(path)}`, `is not valid YAML: ${problem.message.split('\n')[0]}`, { cause: problem });
  }
  checkShape(doc.contents, [], basename(path));
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // Aliases that expand past the limit (a "billion laughs" file): refused by name, with the file.
    const why = messageOf(error);
    throw new NodeConfigError(basename(path), `cannot be read: ${why}${/alias/i.test(why) ? ' (its aliases would expand past 100 references)' : ''}`, { cause: error });
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new NodeConfigError(basename(path), 'must be a mapping of sections (node, journal, api, pipelines, ...)');
  return value as Record<string, unknown>;
}

/** Refuses nesting deeper than MAX_DEPTH and keys that would reach an object's prototype. */
function checkShape(node: YamlNode | null, path: readonly (string | number)[], file: string): void {
  if (path.length > MAX_DEPTH) throw new NodeConfigError(`${fieldName(path.slice(0, MAX_DEPTH))} in ${file}`, `is nested deeper than ${MAX_DEPTH} levels`);
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        throw new NodeConfigError(`${fieldName([...path, key])} in ${file}`, `the key "${key}" is not accepted`);
      }
      checkShape(pair.value as YamlNode | null, [...path, key], file);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => checkShape(item as YamlNode | null, [...path, i], file));
  }
}

function configError(
  issues: readonly z.core.$ZodIssue[],
  raw: Record<string, unknown>,
  fromEnv: ReadonlyMap<string, string>,
  file: string | undefined,
): NodeConfigError {
  const named = issues.slice(0, 20).map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    const variable = envOf(path, fromEnv);
    const where = variable ?? (file === undefined ? fieldName(path) : `${fieldName(path)} in ${basename(file)}`);
    if (issue.code === 'unrecognized_keys') return { where, message: `${issue.message} (${issue.keys.map((k) => `"${k.slice(0, 60)}"`).join(', ')})` };
    const given = SECRET_KEYS.has(String(path.at(-1))) ? undefined : getPath(raw, path);
    return { where, message: given === undefined ? issue.message : `is ${preview(given)}; ${issue.message}` };
  });
  const first = named[0] ?? { where: 'configuration', message: 'is invalid' };
  const rest = named.slice(1).map((n) => `; ${n.where}: ${n.message}`).join('');
  return new NodeConfigError(first.where, `${first.message}${rest}`);
}

function envOf(path: readonly (string | number)[], fromEnv: ReadonlyMap<string, string>): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const found = fromEnv.get(path.slice(0, n).join('.'));
    if (found !== undefined) return found;
  }
  return undefined;
}

/** `pipelines[0].definition.source` */
function fieldName(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'configuration';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

async function resolveConfig(
  config: ParsedNodeConfig,
  context: { env: LoadConfigOptions['env']; cwd: string; fromEnv: ReadonlyMap<string, string>; source: string | undefined },
): Promise<NodeRuntimeConfig> {
  const secrets: string[] = [];
  /** A URL is masked by its password only (the rest names the server, which logs need). */
  const secret = async (input: SecretInput | undefined, path: readonly string[], kind: 'value' | 'url' = 'value'): Promise<string | undefined> => {
    if (input === undefined) return undefined;
    const where = envOf(path, context.fromEnv) ?? fieldName(path);
    let value: string | undefined;
    if (typeof input === 'string') value = input;
    else if ('env' in input) {
      value = context.env[input.env];
      if (value === undefined || value === '') throw new NodeConfigError(where, `names the environment variable ${input.env}, which is not set`);
    } else {
      try {
        value = (await readFile(resolve(context.cwd, input.file), 'utf8')).trim();
      } catch (error) {
        throw new NodeConfigError(where, `cannot read the secret file ${input.file} (${messageOf(error)})`, { cause: error });
      }
      if (value === '') throw new NodeConfigError(where, `the secret file ${input.file} is empty`);
    }
    if (kind === 'url') secrets.push(...urlPasswords(value));
    else secrets.push(value);
    return value;
  };
  const postgresUrl = await secret(config.postgres.url, ['postgres', 'url'], 'url');
  const cassandraPassword = await secret(config.cassandra.password, ['cassandra', 'password']);
  const redisUrl = config.redis === undefined ? undefined : await secret(config.redis.url, ['redis', 'url'], 'url');
  const authToken = await secret(config.api.authToken, ['api', 'authToken']);
  if (config.journal.type === 'postgres' && postgresUrl === undefined) {
    throw new NodeConfigError('postgres.url', 'is required when journal.type is postgres (or set DATAFLOW_POSTGRES_URL)');
  }
  if (config.cluster.enabled) {
    if (redisUrl === undefined) throw new NodeConfigError('cluster.enabled', 'needs redis.url (membership and leases live in Redis; or set DATAFLOW_REDIS_URL)');
    if (config.journal.type !== 'postgres' && config.journal.type !== 'cassandra') {
      throw new NodeConfigError('cluster.enabled', `needs a journal the nodes share (journal.type postgres or cassandra), not ${config.journal.type}`);
    }
    if (config.demo) throw new NodeConfigError('cluster.enabled', 'the built-in demo runs on one node: set demo: false (or DATAFLOW_DEMO=0)');
    if (!config.api.enabled) throw new NodeConfigError('cluster.enabled', 'needs api.enabled: the nodes forward requests to each other through the admin API');
  }
  const { password: _cassandraPassword, ...cassandra } = config.cassandra;
  const { authToken: _token, ...api } = config.api;
  const { redis: _redis, ...plain } = config;
  return {
    ...plain,
    node: { ...config.node, dataDir: resolve(context.cwd, config.node.dataDir) },
    postgres: { schema: config.postgres.schema, ...(postgresUrl === undefined ? {} : { url: postgresUrl }) },
    cassandra: { ...cassandra, ...(cassandraPassword === undefined ? {} : { password: cassandraPassword }) },
    ...(redisUrl === undefined || config.redis === undefined ? {} : { redis: { url: redisUrl, keyPrefix: config.redis.keyPrefix } }),
    api: { ...api, ...(authToken === undefined ? {} : { authToken }) },
    ...(context.source === undefined ? {} : { source: context.source }),
    // The longest first, so that a secret containing another is masked whole.
    secrets: [...new Set(secrets)].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length),
  };
}

function urlPasswords(url: string): string[] {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return [];
    return [parsed.password, decodeURIComponent(parsed.password)];
  } catch {
    return [];
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let current = target;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(current, key) ? current[key] : undefined;
    if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      const created: Record<string, unknown> = {};
      current[key] = created;
      current = created;
    } else current = next as Record<string, unknown>;
  }
  current[path[path.length - 1] as string] = value;
}

function getPath(target: Record<string, unknown>, path: readonly (string | number)[]): unknown {
  let current: unknown = target;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** A short rendering of a value a user gave (secrets never reach here: they are strings checked only for emptiness). */
function preview(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' && value !== null ? (Array.isArray(value) ? 'a list' : 'a mapping') : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * A copy of `text` with every secret of `config` replaced by `***`: for
 * whatever leaves the process (logs, API answers, CLI output).
 */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  return secrets.reduce((t, s) => t.replaceAll(s, '***'), text);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
