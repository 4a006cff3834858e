/**
 * Reads of `messages` and `metadata` shared by the journal (replay, recovery)
 * and the read journal (eventsByPersistenceId, gap filling): rows of one
 * persistence id in order across partitions, skipping deleted events.
 */
import type { types } from 'cassandra-driver';
import { isDataflowError, type PersistedEvent, type SerializerRegistry } from '@dataflow/core';
import type { CassandraSession, Row } from './cassandra-session.js';
import { asReadError } from './cassandra-settings.js';
import { partitionOf, rowToEvent, timeOf, toNumber, toOptionalNumber } from './event-row.js';

/** Ids per `IN` query of `deletedToOf`. */
const DELETED_TO_CHUNK = 100;

export class MessagesReader {
  private readonly q: Record<'rows' | 'deletedTo' | 'deletedToIn' | 'statics', string>;

  constructor(
    private readonly session: CassandraSession,
    private readonly serializers: SerializerRegistry,
  ) {
    const ks = session.keyspace;
    this.q = {
      rows: `SELECT * FROM ${ks}.messages WHERE persistence_id = ? AND partition_nr = ? AND sequence_nr >= ? AND sequence_nr <= ?`,
      deletedTo: `SELECT deleted_to FROM ${ks}.metadata WHERE persistence_id = ?`,
      deletedToIn: `SELECT persistence_id, deleted_to FROM ${ks}.metadata WHERE persistence_id IN ?`,
      statics: `SELECT highest_sequence_nr, tag_sequence_nrs, tagged_to FROM ${ks}.messages WHERE persistence_id = ? AND partition_nr = ? LIMIT 1`,
    };
  }

  /** Highest sequence number deleted by `deleteTo`, 0 when none. */
  async deletedTo(persistenceId: string): Promise<number> {
    const result = await this.session.execute(this.q.deletedTo, [persistenceId], { consistency: this.session.settings.readConsistency, idempotent: true });
    return toOptionalNumber(result.first()?.['deleted_to']) ?? 0;
  }

  /**
   * `deletedTo` of many ids, one `IN` query per `DELETED_TO_CHUNK` ids run
   * concurrently (a tag stream meets ids a page at a time); ids without
   * deletions map to 0.
   */
  async deletedToOf(persistenceIds: readonly string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>(persistenceIds.map((id) => [id, 0]));
    const chunks: string[][] = [];
    for (let i = 0; i < persistenceIds.length; i += DELETED_TO_CHUNK) chunks.push(persistenceIds.slice(i, i + DELETED_TO_CHUNK));
    await Promise.all(
      chunks.map(async (chunk) => {
        const rows = await this.session.execute(this.q.deletedToIn, [chunk], { consistency: this.session.settings.readConsistency, idempotent: true });
        for (const row of rows.rows) result.set(row['persistence_id'] as string, toOptionalNumber(row['deleted_to']) ?? 0);
      }),
    );
    return result;
  }

  /** Raw `messages` rows with `from <= sequence_nr <= to` that are not deleted, in order. */
  async *storedRows(persistenceId: string, fromSequenceNr: number, toSequenceNr: number): AsyncIterable<Row> {
    for await (const page of this.storedPages(persistenceId, fromSequenceNr, toSequenceNr)) yield* page;
  }

  /** `storedRows` a page at a time. */
  async *storedPages(persistenceId: string, fromSequenceNr: number, toSequenceNr: number): AsyncIterable<Row[]> {
    const { targetPartitionSize, readConsistency } = this.session.settings;
    let next: number;
    try {
      next = Math.max(fromSequenceNr, (await this.deletedTo(persistenceId)) + 1, 1);
    } catch (error) {
      throw asReadError(`Replay of ${persistenceId} failed`, error);
    }
    let partition = partitionOf(next, targetPartitionSize);
    while (next <= toSequenceNr) {
      try {
        for await (const page of this.session.pages(this.q.rows, [persistenceId, partition, next, toSequenceNr], readConsistency)) {
          yield page;
          next = toNumber(page[page.length - 1]?.['sequence_nr']) + 1;
        }
        partition++;
        if ((await this.statics(persistenceId, partition, readConsistency)) === undefined) return;
      } catch (error) {
        if (isDataflowError(error)) throw error;
        throw asReadError(`Replay of ${persistenceId} failed`, error);
      }
    }
  }

  toEvent(row: Row): PersistedEvent {
    return rowToEvent(row, this.serializers, timeOf(row['timestamp']));
  }

  /** The static columns (head) of one partition; undefined when the partition does not exist. */
  async statics(persistenceId: string, partition: number, consistency: types.consistencies): Promise<Row | undefined> {
    const result = await this.session.execute(this.q.statics, [persistenceId, partition], { consistency, idempotent: true });
    const row = result.first();
    return row === null || row === undefined || row['highest_sequence_nr'] === null ? undefined : row;
  }
}
