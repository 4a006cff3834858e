/**
 * The journal's own tables, when a projection's read model lives in the same
 * database (Postgres, PGlite): what the bulk catch-up of a projection reads.
 */
import type { PersistencePlugin } from '@dataflow/core';
import { PostgresReadJournal } from '@dataflow/persistence';
import type { JournalTables } from './projection-runner.js';

/**
 * The SQL journal of `plugin`, or undefined for a store without one
 * (Cassandra, in-memory): projections there read event by event.
 *
 * @example
 * ```ts
 * runProjection(projection, { queries, store, executor, journal: sqlJournalOf(persistence) }, signal);
 * ```
 */
export function sqlJournalOf(plugin: PersistencePlugin): JournalTables | undefined {
  const queries = plugin.queries;
  if (!(queries instanceof PostgresReadJournal)) return undefined;
  return { eventTable: queries.eventTable, safeOrdering: (signal) => queries.currentSafeOrdering(signal) };
}
