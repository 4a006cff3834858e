/**
 * Reading and removing the letters a `PostgresDeadLetterTarget` stored: one
 * pipeline's letters page by page (oldest first, by id), by id, and deleted
 * by id, by age or all. What an operator needs to look at a dead-letter
 * queue, replay it and empty it. A table that does not exist yet (no letter
 * was ever sent) reads as an empty queue.
 */
import { ConnectorError, type DeadLetter, type JsonValue, type PipelineStage } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';
import { deadLetterDbError, deadLettersTable } from './postgres-dead-letter-target.js';

/** A letter as stored, with its id (the table's bigserial: increasing in the order letters were stored). */
export interface StoredDeadLetter extends DeadLetter {
  readonly id: number;
}

/** One page of a pipeline's letters. */
export interface DeadLetterPage {
  readonly letters: readonly StoredDeadLetter[];
  /** The id to pass as `afterId` for the next page; undefined on the last page. */
  readonly next: number | undefined;
  /** How many letters the pipeline has in all. */
  readonly total: number;
}

/** Which letters of a pipeline `purge` deletes: all, or those that failed before a time. */
export interface PurgeSelection {
  /** Only letters whose `failedAt` is earlier (epoch ms). */
  readonly failedBefore?: number;
}

interface LetterRow {
  id: string | number | bigint;
  pipeline_id: string;
  stage: PipelineStage;
  stage_name: string;
  error_message: string;
  error_tag: string | null;
  retriable: boolean;
  attempt: number;
  payload: JsonValue;
  batch_id: string | null;
  failed_at: Date | string;
}

const COLUMNS = 'id, pipeline_id, stage, stage_name, error_message, error_tag, retriable, attempt, payload, batch_id, failed_at';

/**
 * The dead letters of a schema's `dead_letters` table.
 *
 * @example
 * ```ts
 * const queue = new PostgresDeadLetterQueue(pgPoolExecutor(pool, { ownsPool: false }), 'ops');
 * const { letters, next, total } = await queue.page('orders', { afterId: 0, limit: 50 });
 * await queue.delete('orders', letters.map((l) => l.id));
 * ```
 */
export class PostgresDeadLetterQueue {
  /** The qualified table, e.g. `"ops"."dead_letters"`. */
  readonly table: string;

  constructor(
    private readonly db: SqlExecutor,
    schema = 'public',
  ) {
    this.table = deadLettersTable(schema);
  }

  /** Up to `limit` letters of `pipelineId` with an id above `afterId`, oldest first, and the pipeline's count. */
  async page(pipelineId: string, options: { readonly afterId: number; readonly limit: number }): Promise<DeadLetterPage> {
    checkLimit(options.limit);
    if (!(await this.exists())) return { letters: [], next: undefined, total: 0 };
    const rows = await this.read<LetterRow>(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE pipeline_id = $1 AND id > $2::bigint ORDER BY id LIMIT ${options.limit + 1}`,
      [pipelineId, String(options.afterId)],
    );
    const counted = await this.read<{ n: number }>(`SELECT count(*)::integer AS n FROM ${this.table} WHERE pipeline_id = $1`, [pipelineId]);
    const letters = rows.slice(0, options.limit).map(toLetter);
    return { letters, next: rows.length > options.limit ? letters.at(-1)?.id : undefined, total: counted[0]?.n ?? 0 };
  }

  /** The letters of `pipelineId` among `ids`, oldest first (ids of other pipelines or unknown ones are left out). */
  async byIds(pipelineId: string, ids: readonly number[]): Promise<readonly StoredDeadLetter[]> {
    if (ids.length === 0 || !(await this.exists())) return [];
    const rows = await this.read<LetterRow>(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE pipeline_id = $1 AND id = ANY($2::text[]::bigint[]) ORDER BY id`,
      [pipelineId, ids.map(String)],
    );
    return rows.map(toLetter);
  }

  /** Deletes the letters of `pipelineId` among `ids`; how many there were. */
  async delete(pipelineId: string, ids: readonly number[]): Promise<number> {
    if (ids.length === 0 || !(await this.exists())) return 0;
    const rows = await this.read<{ id: unknown }>(`DELETE FROM ${this.table} WHERE pipeline_id = $1 AND id = ANY($2::text[]::bigint[]) RETURNING id`, [
      pipelineId,
      ids.map(String),
    ]);
    return rows.length;
  }

  /** Deletes all letters of `pipelineId`, or those that failed before a time; how many there were. */
  async purge(pipelineId: string, selection: PurgeSelection = {}): Promise<number> {
    if (!(await this.exists())) return 0;
    const rows =
      selection.failedBefore === undefined
        ? await this.read<{ id: unknown }>(`DELETE FROM ${this.table} WHERE pipeline_id = $1 RETURNING id`, [pipelineId])
        : await this.read<{ id: unknown }>(`DELETE FROM ${this.table} WHERE pipeline_id = $1 AND failed_at < $2::timestamptz RETURNING id`, [
            pipelineId,
            new Date(selection.failedBefore).toISOString(),
          ]);
    return rows.length;
  }

  private async exists(): Promise<boolean> {
    const rows = await this.read<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [this.table]);
    return rows[0]?.found === true;
  }

  private async read<Row extends object>(sql: string, params: readonly unknown[]): Promise<Row[]> {
    try {
      return await this.db.query<Row>(sql, params);
    } catch (error) {
      throw deadLetterDbError(`cannot read ${this.table}`, error);
    }
  }
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new ConnectorError('postgres', `a page holds at least one letter, got limit ${limit}`, { retriable: false });
}

function toLetter(row: LetterRow): StoredDeadLetter {
  return {
    id: Number(row.id),
    pipelineId: row.pipeline_id,
    stage: row.stage,
    stageName: row.stage_name,
    error: { message: row.error_message, ...(row.error_tag === null ? {} : { tag: row.error_tag }), retriable: row.retriable },
    attempt: row.attempt,
    payload: row.payload,
    ...(row.batch_id === null ? {} : { batchId: row.batch_id }),
    failedAt: new Date(row.failed_at).getTime(),
  };
}
