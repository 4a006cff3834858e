/**
 * The Cassandra sink: one prepared `INSERT` of the mapped columns, rows of a
 * batch grouped by partition key into unlogged batches (one partition each,
 * so a batch is applied atomically on one replica set and costs no batch log),
 * a bound on statements in flight, and a consistency level per sink.
 *
 * Writes are idempotent by primary key: a batch written again after a crash
 * rewrites the same rows with the same values, so the sink may receive batch
 * N+1 before the checkpoint of batch N is durable (`pipelinedWrites`). Inside
 * one batch, rows with the same primary key are reduced to the last one (the
 * row Cassandra would keep), so the outcome never depends on which statement
 * lands first.
 *
 * A record whose value does not fit its column (C6), that lacks a primary key
 * field or that is larger than `maxRowBytes` is returned in
 * `SinkWriteResult.rejected` with the reason (the pipeline's dead-letter
 * queue), and so is a row Cassandra itself refuses as invalid; the other rows
 * of the batch are written. Timeouts and unavailable replicas are retriable
 * `ConnectorError`s for the whole batch.
 */
import { ConnectorError, getPath, parseFieldPath, type DataRecord, type FieldPath, type Sink, type SinkBatch, type SinkContext, type SinkWriteResult } from '@dataflow/core';
import { auth, Client, errors, types, type ClientOptions, type QueryOptions } from 'cassandra-driver';
import { cassandraReconnection, isRetriableDriverError } from '@dataflow/persistence';
import { parseDefinition } from '../factory/parse-definition.js';
import {
  cassandraSinkDefinitionSchema,
  type CassandraSinkDefinition,
  type ParsedCassandraSinkDefinition,
} from './cassandra-sink-options.js';
import { CassandraValueError, convertValue, formatCqlType, parseCqlType, UnsupportedCqlTypeError, valueKey, type CqlType } from './cassandra-values.js';

export { cassandraSinkDefinitionSchema, type CassandraSinkDefinition } from './cassandra-sink-options.js';

/** What the sink may share with its application. */
export interface CassandraSinkDependencies {
  /** A connected-or-not driver client owned by the caller (not shut down by `close`); its keyspace and credentials are the caller's. */
  readonly client?: Client;
}

/** A column the sink writes: its name, CQL type, role in the key, and the record field it comes from. */
interface MappedColumn {
  readonly name: string;
  readonly type: CqlType;
  readonly kind: 'partition_key' | 'clustering' | 'regular' | 'static';
  readonly field: FieldPath;
  readonly fieldText: string;
}

interface Prepared {
  readonly client: Client;
  readonly ownsClient: boolean;
  readonly insert: string;
  readonly columns: readonly MappedColumn[];
  /** Indexes into `columns` of the partition key, then of the clustering key. */
  readonly partitionIndexes: readonly number[];
  readonly primaryIndexes: readonly number[];
}

interface Row {
  readonly index: number;
  readonly params: readonly unknown[];
}

const CONSISTENCY: Readonly<Record<ParsedCassandraSinkDefinition['consistency'], types.consistencies>> = {
  ANY: types.consistencies.any,
  ONE: types.consistencies.one,
  TWO: types.consistencies.two,
  THREE: types.consistencies.three,
  QUORUM: types.consistencies.quorum,
  ALL: types.consistencies.all,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  LOCAL_ONE: types.consistencies.localOne,
};

/** Largest partition key component Cassandra (and the driver's routing) accepts. */
const MAX_KEY_COMPONENT_BYTES = 65_535;

const NETWORK_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Whether a driver failure may go away when tried again: the journal's rule
 * (timeouts, unavailable replicas, no host), plus a failed write (the sink's
 * writes are idempotent, so writing again is safe) and a lost socket.
 */
function isRetriable(error: unknown): boolean {
  if (isRetriableDriverError(error)) return true;
  if (error instanceof errors.ResponseError) return error.code === (types.responseErrorCodes.writeFailure as number);
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return NETWORK_CODES.has(code);
}

/** Cassandra refused this row's content (too large a key, a value it does not accept), not the table or the connection. */
function isRowRefusal(error: unknown): boolean {
  return (
    error instanceof errors.ResponseError &&
    error.code === (types.responseErrorCodes.invalid as number) &&
    !/unconfigured table|keyspace .* does not exist|undefined column/i.test(error.message)
  );
}

/**
 * Writes records as rows of a Cassandra table.
 *
 * @example
 * ```ts
 * const sink = new CassandraSink({
 *   type: 'cassandra', contactPoints: ['127.0.0.1:9042'], localDataCenter: 'datacenter1',
 *   keyspace: 'spark_streams', table: 'prometheus_metrics',
 *   columns: { metric_name: 'metric_name', job: 'job', timestamp: 'timestamp', value: 'value', labels: 'labels' },
 * });
 * await sink.open({ pipelineId: 'metrics', checkpoint: undefined, signal });
 * const { rejected } = await sink.write({ batchId: 'metrics-1', records });
 * await sink.close();
 * ```
 */
export class CassandraSink implements Sink {
  readonly type = 'cassandra';
  /** Idempotent by primary key: a re-driven batch rewrites the same rows. */
  readonly pipelinedWrites = true;
  private readonly definition: ParsedCassandraSinkDefinition;
  private readonly sharedClient: Client | undefined;
  private prepared: Prepared | undefined;

  constructor(definition: CassandraSinkDefinition, dependencies: CassandraSinkDependencies = {}) {
    this.definition = parseDefinition('cassandra', cassandraSinkDefinitionSchema, definition);
    this.sharedClient = dependencies.client;
  }

  /** The qualified table, e.g. `"metrics"."samples"`. */
  get table(): string {
    return `"${this.definition.keyspace}"."${this.definition.table}"`;
  }

  async open(_context: SinkContext): Promise<void> {
    await this.close();
    const client = this.sharedClient ?? new Client(this.clientOptions());
    const ownsClient = this.sharedClient === undefined;
    try {
      await client.connect();
    } catch (error) {
      if (ownsClient) await client.shutdown().catch(() => undefined);
      throw this.error(`cannot connect to ${this.definition.contactPoints.join(', ')}`, error);
    }
    try {
      if (this.definition.createTable !== undefined) await this.createTable(client);
      this.prepared = { client, ownsClient, ...(await this.readTable(client)) };
    } catch (error) {
      if (ownsClient) await client.shutdown().catch(() => undefined);
      throw error instanceof ConnectorError ? error : this.error(`cannot open ${this.table}`, error);
    }
  }

  async write(batch: SinkBatch): Promise<SinkWriteResult> {
    const prepared = this.prepared;
    if (prepared === undefined) throw new ConnectorError('cassandra', 'write before open', { retriable: false });
    const rejected: { index: number; reason: string }[] = [];
    // The last row per primary key, grouped by partition (insertion order kept).
    const partitions = new Map<string, Map<string, Row>>();
    batch.records.forEach((record, index) => {
      const row = this.toRow(prepared, record, index);
      if (typeof row === 'string') {
        rejected.push({ index, reason: row });
        return;
      }
      const partitionKey = prepared.partitionIndexes.map((i) => valueKey(row.params[i])).join('|');
      const primaryKey = prepared.primaryIndexes.map((i) => valueKey(row.params[i])).join('|');
      let rows = partitions.get(partitionKey);
      if (rows === undefined) partitions.set(partitionKey, (rows = new Map<string, Row>()));
      rows.delete(primaryKey);
      rows.set(primaryKey, row);
    });
    const chunks: Row[][] = [];
    for (const rows of partitions.values()) {
      const all = [...rows.values()];
      for (let start = 0; start < all.length; start += this.definition.maxBatchRows) chunks.push(all.slice(start, start + this.definition.maxBatchRows));
    }
    await runBounded(chunks, this.definition.maxConcurrency, (chunk) => this.writeChunk(prepared, chunk, rejected));
    rejected.sort((a, b) => a.index - b.index);
    return rejected.length === 0 ? {} : { rejected };
  }

  async close(): Promise<void> {
    const prepared = this.prepared;
    this.prepared = undefined;
    if (prepared?.ownsClient === true) await prepared.client.shutdown();
  }

  private clientOptions(): ClientOptions {
    const { contactPoints, localDataCenter, credentials, requestTimeoutMs } = this.definition;
    return {
      contactPoints: [...contactPoints],
      localDataCenter,
      socketOptions: { readTimeout: requestTimeoutMs, connectTimeout: Math.min(requestTimeoutMs, 10_000) },
      // Back within seconds of the cluster, not after the driver's default backoff of up to 10 minutes.
      policies: { reconnection: cassandraReconnection() },
      ...(credentials === undefined ? {} : { authProvider: new auth.PlainTextAuthProvider(credentials.username, credentials.password) }),
    };
  }

  /** Writes one partition's rows: a single insert, or an unlogged batch; rows Cassandra refuses as invalid are rejected one by one. */
  private async writeChunk(prepared: Prepared, chunk: readonly Row[], rejected: { index: number; reason: string }[]): Promise<void> {
    const options: QueryOptions = {
      prepare: true,
      consistency: CONSISTENCY[this.definition.consistency],
      isIdempotent: true,
    };
    try {
      if (chunk.length === 1) await prepared.client.execute(prepared.insert, [...(chunk[0] as Row).params], options);
      else await prepared.client.batch(chunk.map((row) => ({ query: prepared.insert, params: [...row.params] })), { ...options, logged: false });
      return;
    } catch (error) {
      if (!isRowRefusal(error)) throw this.error(`cannot write ${chunk.length} row(s) to ${this.table}`, error);
      if (chunk.length === 1) {
        rejected.push({ index: (chunk[0] as Row).index, reason: `Cassandra refused the row: ${this.redact(errorMessage(error))}` });
        return;
      }
    }
    // The batch held a row Cassandra refuses: find it by writing the rows one by one.
    for (const row of chunk) await this.writeChunk(prepared, [row], rejected);
  }

  /** The bound values of a record, or the reason it cannot be written. */
  private toRow(prepared: Prepared, record: DataRecord, index: number): Row | string {
    const params: unknown[] = [];
    let bytes = 0;
    for (const column of prepared.columns) {
      const value = getPath(record, column.field);
      const isKey = column.kind === 'partition_key' || column.kind === 'clustering';
      if (value === undefined || value === null) {
        if (isKey) return `primary key column "${column.name}": field ${column.fieldText} is ${value === null ? 'null' : 'missing'}`;
        // A missing field leaves the column unset (no tombstone); null clears it.
        params.push(value === undefined ? types.unset : null);
        continue;
      }
      try {
        const converted = convertValue(column.type, value);
        if (column.kind === 'partition_key' && converted.bytes > MAX_KEY_COMPONENT_BYTES) {
          return `primary key column "${column.name}" takes ${converted.bytes} bytes; Cassandra allows at most ${MAX_KEY_COMPONENT_BYTES}`;
        }
        params.push(converted.value);
        bytes += converted.bytes;
      } catch (error) {
        if (!(error instanceof CassandraValueError)) throw error;
        return `column "${column.name}" (${formatCqlType(column.type)}) from field ${column.fieldText}: ${error.message}`;
      }
    }
    if (bytes > this.definition.maxRowBytes) return `the row takes about ${bytes} bytes, more than maxRowBytes (${this.definition.maxRowBytes})`;
    return { index, params };
  }

  private async createTable(client: Client): Promise<void> {
    const create = this.definition.createTable;
    if (create === undefined) return;
    let cql: string;
    if (create.cql !== undefined) cql = create.cql;
    else {
      const columns = Object.entries(create.columns ?? {}).map(([name, type]) => `"${name}" ${formatCqlType(parseCqlType(type))}`);
      const clustering = create.clusteringKey.map((entry) => (typeof entry === 'string' ? { column: entry, order: 'ASC' as const } : entry));
      const partition = (create.partitionKey ?? []).map((c) => `"${c}"`).join(', ');
      const primaryKey = [`(${partition})`, ...clustering.map((c) => `"${c.column}"`)].join(', ');
      const order = clustering.length === 0 ? '' : ` WITH CLUSTERING ORDER BY (${clustering.map((c) => `"${c.column}" ${c.order}`).join(', ')})`;
      cql = `CREATE TABLE IF NOT EXISTS ${this.table} (${columns.join(', ')}, PRIMARY KEY (${primaryKey}))${order}`;
    }
    try {
      await client.execute(cql, [], { consistency: types.consistencies.all });
    } catch (error) {
      throw this.error(`cannot create ${this.table}`, error);
    }
  }

  /** Reads the table's columns from `system_schema` and checks the mapping against them. */
  private async readTable(client: Client): Promise<Omit<Prepared, 'client' | 'ownsClient'>> {
    const { keyspace, table } = this.definition;
    let rows: types.Row[];
    try {
      const result = await client.execute(
        'SELECT column_name, kind, position, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?',
        [keyspace, table],
        { prepare: true, consistency: types.consistencies.localOne },
      );
      rows = result.rows;
    } catch (error) {
      throw this.error(`cannot read the schema of ${this.table}`, error);
    }
    if (rows.length === 0) {
      throw new ConnectorError('cassandra', `table ${this.table} does not exist (create it, or set createTable)`, { retriable: false });
    }
    const schema = new Map(rows.map((row) => [String(row['column_name']), { kind: String(row['kind']), position: Number(row['position']), type: String(row['type']) }]));
    const problems: string[] = [];
    const columns: MappedColumn[] = [];
    for (const [name, fieldText] of Object.entries(this.definition.columns)) {
      const column = schema.get(name);
      if (column === undefined) {
        problems.push(`column "${name}" does not exist in ${this.table}`);
        continue;
      }
      try {
        columns.push({ name, type: parseCqlType(column.type), kind: column.kind as MappedColumn['kind'], field: parseFieldPath(fieldText), fieldText });
      } catch (error) {
        if (!(error instanceof UnsupportedCqlTypeError)) throw error;
        problems.push(`column "${name}": ${error.message}`);
      }
    }
    const keyColumns = [...schema.entries()]
      .filter(([, c]) => c.kind === 'partition_key' || c.kind === 'clustering')
      .sort(([, a], [, b]) => (a.kind === b.kind ? a.position - b.position : a.kind === 'partition_key' ? -1 : 1));
    for (const [name] of keyColumns) {
      if (!Object.hasOwn(this.definition.columns, name)) problems.push(`primary key column "${name}" is not mapped in columns`);
    }
    if (problems.length > 0) throw new ConnectorError('cassandra', `columns do not fit ${this.table}: ${problems.join('; ')}`, { retriable: false });
    const indexOf = (name: string): number => columns.findIndex((c) => c.name === name);
    return {
      insert: `INSERT INTO ${this.table} (${columns.map((c) => `"${c.name}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
      columns,
      partitionIndexes: keyColumns.filter(([, c]) => c.kind === 'partition_key').map(([name]) => indexOf(name)),
      primaryIndexes: keyColumns.map(([name]) => indexOf(name)),
    };
  }

  /** A `ConnectorError` for a driver failure, with the credentials blanked out of its message. */
  private error(message: string, cause: unknown): ConnectorError {
    if (cause instanceof ConnectorError) return cause;
    return new ConnectorError('cassandra', `${message}: ${this.redact(errorMessage(cause))}`, { retriable: isRetriable(cause), cause: this.redactedCause(cause) });
  }

  private redact(text: string): string {
    const password = this.definition.credentials?.password;
    return password === undefined ? text : text.split(password).join('***');
  }

  /** The cause kept on an error: the driver's error when it cannot hold the password, else a copy without it. */
  private redactedCause(cause: unknown): unknown {
    const password = this.definition.credentials?.password;
    if (password === undefined || !(cause instanceof Error)) return cause;
    let fields = '';
    try {
      fields = JSON.stringify(Object.entries(cause));
    } catch {
      // A cause that cannot be serialized is replaced rather than inspected.
      fields = password;
    }
    const text = `${cause.message}\n${cause.stack ?? ''}\n${fields}`;
    if (!text.includes(password)) return cause;
    const copy = new Error(this.redact(cause.message));
    copy.name = cause.name;
    return copy;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs `task` over `items` with at most `limit` at once; after a failure no new task starts and the first failure is thrown once all running ones ended. */
async function runBounded<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
