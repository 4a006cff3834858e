/**
 * Connection settings of the node's configuration (`kafka.brokers`,
 * `kafka.client`, `cassandra.contactPoints`, `cassandra.localDataCenter`)
 * filled into a pipeline definition's Kafka and Cassandra connectors that do
 * not give their own, before the definition is validated and recorded. So a
 * definition says `{ type: kafka, topic: metrics }` and runs against the
 * cluster the node is configured for. Only these non-secret settings are
 * filled: a definition is recorded in the journal, which never holds a
 * secret (a Postgres sink without `connectionString` uses the node's pool
 * instead, see `connector-factory.ts`).
 *
 * A definition without `deadLetter` gets `{ type: 'postgres' }` (with the
 * node's schema on a Postgres server) when the node has a SQL database
 * (`deadLetters`): records a stage dead-letters are kept in the node's
 * `dead_letters` table, where the admin API and `dataflow dlq` read, replay
 * and purge them, instead of failing their batch.
 */

/** What the node fills in. */
export interface ConnectionDefaults {
  readonly kafka?: { readonly brokers: readonly string[]; readonly client: string };
  readonly cassandra?: { readonly contactPoints: readonly string[]; readonly localDataCenter: string };
  /**
   * A definition without a dead-letter target gets the node's database (when
   * the node has one: embedded, a postgres journal or postgres.url), in
   * `schema` (default `public`).
   */
  readonly deadLetters?: { readonly type: 'postgres'; readonly schema?: string };
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function fill(connector: unknown, defaults: ConnectionDefaults): unknown {
  if (!isObject(connector)) return connector;
  const type = connector['type'];
  if (type === 'kafka' && defaults.kafka !== undefined && !Object.hasOwn(connector, 'brokers')) {
    return { ...connector, brokers: [...defaults.kafka.brokers], ...(Object.hasOwn(connector, 'client') ? {} : { client: defaults.kafka.client }) };
  }
  if (type === 'cassandra' && defaults.cassandra !== undefined && !Object.hasOwn(connector, 'contactPoints')) {
    return {
      ...connector,
      contactPoints: [...defaults.cassandra.contactPoints],
      ...(Object.hasOwn(connector, 'localDataCenter') ? {} : { localDataCenter: defaults.cassandra.localDataCenter }),
    };
  }
  if (type === 'tee' && Array.isArray(connector['sinks'])) {
    return { ...connector, sinks: (connector['sinks'] as unknown[]).map((sink) => fill(sink, defaults)) };
  }
  return connector;
}

/**
 * A copy of `definition` with the defaults filled in; anything that is not
 * a definition-shaped object is returned as it is (validation reports it).
 *
 * @example
 * ```ts
 * withConnectionDefaults({ name: 'm', source: { type: 'kafka', topics: ['t'] }, sink: { type: 'console' } },
 *   { kafka: { brokers: ['kafka:9092'], client: 'platformatic' } });
 * // source: { type: 'kafka', topics: ['t'], brokers: ['kafka:9092'], client: 'platformatic' }
 * ```
 */
export function withConnectionDefaults(definition: unknown, defaults: ConnectionDefaults): unknown {
  if (!isObject(definition)) return definition;
  const copy: Json = { ...definition };
  for (const key of ['source', 'sink', 'deadLetter']) {
    if (Object.hasOwn(copy, key)) copy[key] = fill(copy[key], defaults);
  }
  if (defaults.deadLetters !== undefined && !Object.hasOwn(copy, 'deadLetter')) copy['deadLetter'] = { ...defaults.deadLetters };
  return copy;
}
