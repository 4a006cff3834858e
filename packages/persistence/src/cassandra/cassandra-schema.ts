/**
 * The Cassandra tables of the journal, the snapshot store and the read
 * journal, as CQL. `packages/persistence/cql/001-journal.cql` and
 * `docker/cassandra/init/001-journal.cql` are renderings of these statements
 * (a unit test keeps them identical); `autoCreate: true` runs them directly.
 */
import type { Client } from 'cassandra-driver';

/** How a keyspace created by `autoCreate` is replicated. */
export type KeyspaceReplication =
  | { readonly class: 'SimpleStrategy'; readonly replicationFactor: number }
  | { readonly class: 'NetworkTopologyStrategy'; readonly dataCenters: Readonly<Record<string, number>> };

/** The placeholder the shipped CQL file uses for the keyspace name. */
export const KEYSPACE_PLACEHOLDER = '${keyspace}';

const KEYSPACE_NAME = /^[a-zA-Z][a-zA-Z0-9_]{0,47}$/;

/** Throws unless `keyspace` is a plain, unquoted CQL identifier (it is pasted into statements). */
export function assertKeyspaceName(keyspace: string): void {
  if (!KEYSPACE_NAME.test(keyspace)) {
    throw new RangeError(`Invalid keyspace name "${keyspace}": use 1-48 characters of [a-zA-Z0-9_], starting with a letter`);
  }
}

function replicationCql(replication: KeyspaceReplication): string {
  if (replication.class === 'SimpleStrategy') {
    return `{'class': 'SimpleStrategy', 'replication_factor': ${replication.replicationFactor}}`;
  }
  const dcs = Object.entries(replication.dataCenters).map(([dc, rf]) => `, '${dc}': ${rf}`).join('');
  return `{'class': 'NetworkTopologyStrategy'${dcs}}`;
}

/**
 * The CQL statements that create the keyspace and every table, in order; each
 * is idempotent (`IF NOT EXISTS`).
 *
 * @example
 * ```ts
 * for (const statement of journalSchema('dataflow')) await client.execute(statement);
 * ```
 */
export function journalSchema(
  keyspace: string,
  replication: KeyspaceReplication = { class: 'SimpleStrategy', replicationFactor: 1 },
): string[] {
  if (keyspace !== KEYSPACE_PLACEHOLDER) assertKeyspaceName(keyspace);
  const ks = keyspace;
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${ks}
  WITH replication = ${replicationCql(replication)}`,
    // One partition per (persistence id, partition_nr); an append lives wholly in the
    // partition of its last sequence number. The static columns hold the head of the id
    // (singleWriter 'conditional' makes every append a conditional batch on it).
    `CREATE TABLE IF NOT EXISTS ${ks}.messages (
  persistence_id text,
  partition_nr bigint,
  sequence_nr bigint,
  timestamp timeuuid,
  timebucket bigint,
  writer_uuid text,
  ser_id text,
  ser_manifest text,
  event_manifest text,
  event blob,
  tags set<text>,
  tag_pid_sequence_nrs map<text, bigint>,
  meta blob,
  highest_sequence_nr bigint static,
  tag_sequence_nrs map<text, bigint> static,
  tagged_to bigint static,
  PRIMARY KEY ((persistence_id, partition_nr), sequence_nr))
  WITH compaction = {'class': 'SizeTieredCompactionStrategy'}`,
    // Events by tag, one partition per tag and time bucket. tag_pid_sequence_nr counts
    // the events of one persistence id carrying the tag: readers detect gaps with it.
    `CREATE TABLE IF NOT EXISTS ${ks}.tag_views (
  tag_name text,
  timebucket bigint,
  timestamp timeuuid,
  persistence_id text,
  sequence_nr bigint,
  tag_pid_sequence_nr bigint,
  event_timestamp bigint,
  writer_uuid text,
  ser_id text,
  ser_manifest text,
  event_manifest text,
  event blob,
  tags set<text>,
  meta blob,
  PRIMARY KEY ((tag_name, timebucket), timestamp, persistence_id, sequence_nr))
  WITH compaction = {'class': 'TimeWindowCompactionStrategy'}`,
    // The time buckets that hold rows of a tag, so readers never scan empty buckets.
    `CREATE TABLE IF NOT EXISTS ${ks}.tag_buckets (
  tag_name text,
  timebucket bigint,
  PRIMARY KEY (tag_name, timebucket))`,
    // Writer leases (singleWriter: 'lease'): rows expire with their TTL.
    `CREATE TABLE IF NOT EXISTS ${ks}.writer_leases (
  persistence_id text PRIMARY KEY,
  holder text,
  acquired_at bigint)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.all_persistence_ids (
  persistence_id text PRIMARY KEY)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.metadata (
  persistence_id text PRIMARY KEY,
  deleted_to bigint,
  properties map<text, text>)`,
    `CREATE TABLE IF NOT EXISTS ${ks}.snapshots (
  persistence_id text,
  sequence_nr bigint,
  timestamp bigint,
  ser_id text,
  ser_manifest text,
  schema_version int,
  snapshot_data blob,
  meta blob,
  PRIMARY KEY (persistence_id, sequence_nr))
  WITH CLUSTERING ORDER BY (sequence_nr DESC)`,
  ];
}

/** The statements as one CQL file (statements end with `;`, separated by a blank line). */
export function journalSchemaFile(keyspace: string, replication?: KeyspaceReplication): string {
  const header =
    '-- DataFlow Cassandra journal, snapshot store and read journal tables.\n' +
    '-- Generated from packages/persistence/src/cassandra/cassandra-schema.ts; edit that file, not this one.\n\n';
  return header + journalSchema(keyspace, replication).map((s) => `${s};\n`).join('\n');
}

/**
 * Creates the keyspace and tables (development and tests: production applies
 * the shipped CQL file). Waits for schema agreement after each statement.
 */
export async function createJournalSchema(client: Client, keyspace: string, replication?: KeyspaceReplication): Promise<void> {
  for (const statement of journalSchema(keyspace, replication)) {
    await client.execute(statement);
  }
}
