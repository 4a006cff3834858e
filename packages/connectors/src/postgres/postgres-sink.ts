/**
 * The Postgres sink: each batch is one transaction of multi-row inserts (one
 * `INSERT ... SELECT FROM unnest(...)` per `maxRowsPerStatement` rows, every
 * value sent as text and cast by Postgres to its column's type), optionally
 * an upsert on a key (`ON CONFLICT (key) DO UPDATE`), which makes a replayed
 * batch rewrite the same rows.
 *
 * A record whose value cannot go into its column (an object for an integer
 * column, text Postgres cannot cast, a NUL character, a NOT NULL column left
 * empty) is returned in `SinkWriteResult.rejected` with the reason; the rest
 * of the batch is committed. Lost connections, deadlocks and shutdowns are
 * retriable `ConnectorError`s for the whole batch (nothing of it committed).
 */
import { ConnectorError, getPath, InvalidConnectorOptionsError, parseFieldPath, type DataRecord, type FieldPath, type JsonValue, type Sink, type SinkBatch, type SinkContext, type SinkWriteResult } from '@dataflow/core';
import { isRetriableDbError, pgPoolExecutor, type SqlExecutor } from '@dataflow/persistence';
import pg from 'pg';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const IDENTIFIER_MESSAGE = 'a lower-case SQL name: letters, digits or _ (at most 63), not starting with a digit';
const identifierSchema = z
  .string()
  .regex(IDENTIFIER, IDENTIFIER_MESSAGE)
  .refine((name) => name !== '__proto__', '__proto__ is not accepted as a name');

/** Column name -> field path, with the keys checked on the raw input (a `__proto__` key is reported, never dropped). */
const columnsSchema = z
  .preprocess(
    (input, ctx) => {
      if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
        for (const key of Object.keys(input)) {
          if (!IDENTIFIER.test(key) || key === '__proto__') ctx.issues.push({ code: 'custom', path: [key], input, message: `"${key.slice(0, 70)}" is not ${IDENTIFIER_MESSAGE}` });
        }
      }
      return input;
    },
    z.record(
      z.string(),
      z.string({ error: 'Expected a field path (a string such as "a.b[0]")' }).superRefine((text, ctx) => {
        try {
          parseFieldPath(text);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `Invalid field path: ${error instanceof Error ? error.message : String(error)}` });
        }
      }),
    ),
  )
  .refine((columns) => Object.keys(columns).length > 0, 'map at least one column to a field');

/**
 * Schema of a Postgres sink definition.
 *
 * @example
 * ```ts
 * postgresSinkDefinitionSchema.parse({
 *   type: 'postgres', connectionString: 'postgres://postgres@127.0.0.1:5432/app', schema: 'sales', table: 'orders',
 *   columns: { id: 'id', total: 'order.total', payload: 'order' }, upsert: { key: ['id'] },
 * });
 * ```
 */
export const postgresSinkDefinitionSchema = z
  .strictObject({
    type: z.literal('postgres'),
    /** Not needed when the application passes a shared pool. */
    connectionString: z.string().min(1).optional(),
    schema: identifierSchema.default('public'),
    table: identifierSchema,
    columns: columnsSchema,
    /** Insert or update on the key (a primary key or unique constraint of exactly these columns). */
    upsert: z
      .strictObject({
        key: z.array(identifierSchema).min(1, 'at least one key column'),
        /** Columns updated on a conflict; default every mapped column outside the key. */
        update: z.array(identifierSchema).optional(),
      })
      .optional(),
    /** Rows per INSERT statement; a batch of more rows takes several statements in its one transaction. */
    maxRowsPerStatement: z.number().int().min(1).max(10_000).default(1000),
    maxConnections: z.number().int().min(1).max(100).default(4),
    statementTimeoutMs: z.number().int().positive().max(3_600_000).default(30_000),
  })
  .superRefine((value, ctx) => {
    const mapped = new Set(Object.keys(value.columns));
    value.upsert?.key.forEach((column, i) => {
      if (!mapped.has(column)) ctx.addIssue({ code: 'custom', path: ['upsert', 'key', i], message: `key column "${column}" is not in columns` });
    });
    value.upsert?.update?.forEach((column, i) => {
      if (!mapped.has(column)) ctx.addIssue({ code: 'custom', path: ['upsert', 'update', i], message: `column "${column}" is not in columns` });
      if (value.upsert?.key.includes(column) === true) ctx.addIssue({ code: 'custom', path: ['upsert', 'update', i], message: `column "${column}" is part of the key` });
    });
  });

/** A Postgres sink definition as written by a user. */
export type PostgresSinkDefinition = z.input<typeof postgresSinkDefinitionSchema>;
type ParsedDefinition = z.output<typeof postgresSinkDefinitionSchema>;

/** What the Postgres sink may share with its application. */
export interface PostgresSinkDependencies {
  /** A pool owned by the caller (not ended by `close`); without it the sink creates its own from `connectionString`. */
  readonly pool?: pg.Pool;
  /**
   * A database owned by the caller (not closed by `close`), used instead of a
   * pool: e.g. a node's embedded PGlite. Wins over `pool` and `connectionString`.
   */
  readonly executor?: SqlExecutor;
  /** Told when an idle pooled connection of the sink's own pool dies; the pool replaces it. Default: ignore. */
  readonly onIdleConnectionError?: (error: ConnectorError) => void;
}

type Category = 'json' | 'timestamp' | 'array' | 'scalar';

interface Column {
  readonly name: string;
  /** The column's type as `format_type` spells it, used in the cast. */
  readonly type: string;
  readonly category: Category;
  readonly field: FieldPath;
  readonly fieldText: string;
}

interface Opened {
  readonly db: SqlExecutor;
  /** Whether `close` releases `db` (the sink's own pool). */
  readonly owned: boolean;
  readonly columns: readonly Column[];
  readonly statement: string;
  readonly keyIndexes: readonly number[];
}

interface Row {
  readonly index: number;
  readonly values: readonly (string | null)[];
}

/** SQLSTATE classes of a row's data (bad value, constraint, cardinality): the row is refused, not the batch. */
const ROW_REFUSAL = /^(22|23|21)/;
const MAX_EPOCH_MS = 8.64e15;

/**
 * Writes records as rows of a Postgres table, one transaction per batch.
 *
 * @example
 * ```ts
 * const sink = new PostgresSink({
 *   type: 'postgres', connectionString: process.env.DATABASE_URL, table: 'orders',
 *   columns: { id: 'id', total: 'total', payload: 'order' }, upsert: { key: ['id'] },
 * });
 * await sink.open({ pipelineId: 'orders', checkpoint: undefined, signal });
 * const { rejected } = await sink.write({ batchId: 'orders-1', records });
 * await sink.close();
 * ```
 */
export class PostgresSink implements Sink {
  readonly type = 'postgres';
  /** With an upsert key, a re-driven batch rewrites the same rows; a plain insert is not idempotent. */
  readonly pipelinedWrites: boolean;
  private readonly definition: ParsedDefinition;
  private readonly sharedPool: pg.Pool | undefined;
  private readonly sharedExecutor: SqlExecutor | undefined;
  private readonly onIdleConnectionError: (error: ConnectorError) => void;
  private opened: Opened | undefined;

  constructor(definition: PostgresSinkDefinition, dependencies: PostgresSinkDependencies = {}) {
    this.definition = parseDefinition('postgres', postgresSinkDefinitionSchema, definition);
    if (this.definition.connectionString === undefined && dependencies.pool === undefined && dependencies.executor === undefined) {
      throw new InvalidConnectorOptionsError('postgres', [{ path: 'connectionString', message: 'a connection string is needed when no shared pool or database is given' }]);
    }
    this.sharedPool = dependencies.pool;
    this.sharedExecutor = dependencies.executor;
    this.onIdleConnectionError = dependencies.onIdleConnectionError ?? (() => undefined);
    this.pipelinedWrites = this.definition.upsert !== undefined;
  }

  /** The qualified table, e.g. `"sales"."orders"`. */
  get table(): string {
    return `${pg.escapeIdentifier(this.definition.schema)}.${pg.escapeIdentifier(this.definition.table)}`;
  }

  async open(_context: SinkContext): Promise<void> {
    await this.close();
    const db = this.sharedExecutor ?? this.poolExecutor();
    const owned = db !== this.sharedExecutor;
    try {
      this.opened = { db, owned, ...(await this.prepare(db)) };
    } catch (error) {
      if (owned) await db.close().catch(() => undefined);
      throw error instanceof ConnectorError ? error : this.error(`cannot open ${this.table}`, error);
    }
  }

  /** The shared pool, or a pool of the sink's own from `connectionString`, as an executor (ended by `close` only when it is the sink's). */
  private poolExecutor(): SqlExecutor {
    const settings = { statementTimeoutMs: this.definition.statementTimeoutMs, lockTimeoutMs: 0 };
    if (this.sharedPool !== undefined) return pgPoolExecutor(this.sharedPool, { ...settings, ownsPool: false });
    const pool = new pg.Pool({ connectionString: this.definition.connectionString, max: this.definition.maxConnections, connectionTimeoutMillis: 10_000 });
    pool.on('error', (error) => this.onIdleConnectionError(this.error('idle connection failed', error)));
    return pgPoolExecutor(pool, { ...settings, ownsPool: true });
  }

  async write(batch: SinkBatch): Promise<SinkWriteResult> {
    const opened = this.opened;
    if (opened === undefined) throw new ConnectorError('postgres', 'write before open', { retriable: false });
    const rejected: { index: number; reason: string }[] = [];
    let rows: Row[] = [];
    batch.records.forEach((record, index) => {
      const row = this.toRow(opened, record, index);
      if (typeof row === 'string') rejected.push({ index, reason: row });
      else rows.push(row);
    });
    if (this.definition.upsert !== undefined) {
      // One statement cannot update a row twice: the last record per key wins, as it would in order.
      const byKey = new Map<string, Row>();
      for (const row of rows) {
        const key = JSON.stringify(opened.keyIndexes.map((i) => row.values[i]));
        byKey.delete(key);
        byKey.set(key, row);
      }
      rows = [...byKey.values()];
    }
    if (rows.length > 0) await this.insert(opened, rows, rejected);
    rejected.sort((a, b) => a.index - b.index);
    return rejected.length === 0 ? {} : { rejected };
  }

  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    if (opened !== undefined && opened.owned) await opened.db.close();
  }

  /** Inserts all rows in one transaction; when Postgres refuses a row's data, inserts them one by one behind savepoints and rejects the refused ones. */
  private async insert(opened: Opened, rows: readonly Row[], rejected: { index: number; reason: string }[]): Promise<void> {
    const { db } = opened;
    try {
      await db.transaction(async (tx) => {
        for (let start = 0; start < rows.length; start += this.definition.maxRowsPerStatement) {
          await tx.query(opened.statement, this.parameters(opened, rows.slice(start, start + this.definition.maxRowsPerStatement)));
        }
      });
      return;
    } catch (error) {
      // The executor rolled the transaction back (and discarded a broken connection).
      if (!isRowRefusal(error)) throw this.error(`cannot write ${rows.length} row(s) to ${this.table}`, error);
    }
    const refused: { index: number; reason: string }[] = [];
    try {
      await db.transaction(async (tx) => {
        for (const row of rows) {
          await tx.query('SAVEPOINT row');
          try {
            await tx.query(opened.statement, this.parameters(opened, [row]));
          } catch (error) {
            if (!isRowRefusal(error)) throw this.error(`cannot write a row to ${this.table}`, error);
            await tx.query('ROLLBACK TO SAVEPOINT row');
            refused.push({ index: row.index, reason: `Postgres refused the row: ${this.redact(messageOf(error))}` });
          }
        }
      });
    } catch (error) {
      throw error instanceof ConnectorError ? error : this.error(`cannot write to ${this.table}`, error);
    }
    rejected.push(...refused);
  }

  /** One text array per column. */
  private parameters(opened: Opened, rows: readonly Row[]): (string | null)[][] {
    return opened.columns.map((_, c) => rows.map((row) => row.values[c] ?? null));
  }

  /** The text values of a record, or the reason it cannot be written. */
  private toRow(opened: Opened, record: DataRecord, index: number): Row | string {
    const values: (string | null)[] = [];
    for (const column of opened.columns) {
      const value = getPath(record, column.field);
      if (value === undefined || value === null) {
        if (opened.keyIndexes.includes(values.length)) return `key column "${column.name}": field ${column.fieldText} is ${value === null ? 'null' : 'missing'}`;
        values.push(null);
        continue;
      }
      const text = toText(column, value);
      if (text.ok) values.push(text.text);
      else return `column "${column.name}" (${column.type}) from field ${column.fieldText}: ${text.reason}`;
    }
    return { index, values };
  }

  /** Reads the table's column types, builds the statement, and has Postgres plan it (checks columns, types and the upsert key). */
  private async prepare(db: SqlExecutor): Promise<Omit<Opened, 'db' | 'owned'>> {
    let typed: { attname: string; type: string; typcategory: string }[];
    try {
      typed = await db.query<{ attname: string; type: string; typcategory: string }>(
        `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, t.typcategory
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
        [this.table],
      );
    } catch (error) {
      throw this.error(`cannot read the columns of ${this.table}`, error);
    }
    if (typed.length === 0) throw new ConnectorError('postgres', `table ${this.table} does not exist`, { retriable: false });
    const types = new Map(typed.map((row) => [row.attname, row]));
    const problems: string[] = [];
    const columns: Column[] = [];
    for (const [name, fieldText] of Object.entries(this.definition.columns)) {
      const found = types.get(name);
      if (found === undefined) {
        problems.push(`column "${name}" does not exist`);
        continue;
      }
      columns.push({ name, type: found.type, category: categoryOf(found.type, found.typcategory), field: parseFieldPath(fieldText), fieldText });
    }
    if (problems.length > 0) throw new ConnectorError('postgres', `columns do not fit ${this.table}: ${problems.join('; ')}`, { retriable: false });
    const statement = this.statement(columns);
    const keyIndexes = (this.definition.upsert?.key ?? []).map((key) => columns.findIndex((c) => c.name === key));
    try {
      // Planning checks the casts and that the upsert key matches a unique constraint, without writing.
      await db.query(`EXPLAIN ${statement}`, columns.map(() => []));
    } catch (error) {
      throw this.error(`cannot insert into ${this.table}`, error);
    }
    return { columns, statement, keyIndexes };
  }

  private statement(columns: readonly Column[]): string {
    const names = columns.map((c) => pg.escapeIdentifier(c.name));
    const aliases = columns.map((_, i) => `c${i}`);
    const select = columns.map((c, i) => `${aliases[i]}::${c.type}`).join(', ');
    const unnest = columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
    let sql = `INSERT INTO ${this.table} (${names.join(', ')}) SELECT ${select} FROM unnest(${unnest}) AS r(${aliases.join(', ')})`;
    const upsert = this.definition.upsert;
    if (upsert !== undefined) {
      const update = upsert.update ?? columns.map((c) => c.name).filter((name) => !upsert.key.includes(name));
      const target = upsert.key.map((k) => pg.escapeIdentifier(k)).join(', ');
      sql +=
        update.length === 0
          ? ` ON CONFLICT (${target}) DO NOTHING`
          : ` ON CONFLICT (${target}) DO UPDATE SET ${update.map((c) => `${pg.escapeIdentifier(c)} = EXCLUDED.${pg.escapeIdentifier(c)}`).join(', ')}`;
    }
    return sql;
  }

  private error(message: string, cause: unknown): ConnectorError {
    if (cause instanceof ConnectorError) return cause;
    return new ConnectorError('postgres', `${message}: ${this.redact(messageOf(cause))}`, { retriable: isRetriableDbError(cause), cause });
  }

  /** Blanks out the connection string's password wherever it appears. */
  private redact(text: string): string {
    const connectionString = this.definition.connectionString;
    if (connectionString === undefined) return text;
    let password = '';
    try {
      password = decodeURIComponent(new URL(connectionString).password);
    } catch {
      password = '';
    }
    let out = text.split(connectionString).join('postgres://***');
    if (password.length > 0) out = out.split(password).join('***');
    return out;
  }
}

function isRowRefusal(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return ROW_REFUSAL.test(code);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function categoryOf(type: string, typcategory: string): Category {
  if (type === 'json' || type === 'jsonb') return 'json';
  if (typcategory === 'A') return 'array';
  if (/^timestamp|^date$/.test(type)) return 'timestamp';
  return 'scalar';
}

type Text = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: string };

function describe(value: JsonValue): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : `string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

/** The text Postgres casts to the column's type. */
function toText(column: Column, value: JsonValue): Text {
  switch (column.category) {
    case 'json':
      return { ok: true, text: JSON.stringify(value) };
    case 'timestamp':
      if (typeof value === 'number') {
        if (!Number.isInteger(value) || Math.abs(value) > MAX_EPOCH_MS) return { ok: false, reason: `expected epoch milliseconds (an integer), got ${describe(value)}` };
        return { ok: true, text: new Date(value).toISOString() };
      }
      return typeof value === 'string' ? { ok: true, text: value } : { ok: false, reason: `expected epoch milliseconds or a date/time string, got ${describe(value)}` };
    case 'array': {
      if (!Array.isArray(value)) return { ok: false, reason: `expected an array, got ${describe(value)}` };
      const items: string[] = [];
      for (const item of value) {
        if (item === null) items.push('NULL');
        else if (typeof item === 'object') return { ok: false, reason: 'expected an array of scalars (nested arrays and objects are not supported)' };
        else items.push(`"${String(item).replace(/[\\"]/g, '\\$&')}"`);
      }
      return { ok: true, text: `{${items.join(',')}}` };
    }
    case 'scalar':
      if (typeof value === 'object') return { ok: false, reason: `expected a string, number or boolean, got ${describe(value)}` };
      return { ok: true, text: String(value) };
  }
}
