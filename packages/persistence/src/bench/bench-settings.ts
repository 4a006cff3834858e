/**
 * What the persistence benches share: the Cassandra they connect to (from
 * the same `DATAFLOW_CASSANDRA_*` variables the tests use) and the event
 * payload they write, so their figures compare.
 */

/** A 200-byte-ish event payload, the same in every bench. */
export const BENCH_PAYLOAD = { source: 'kafka', records: 'x'.repeat(160) };

/** Contact points and data center of a bench run: options first, then the environment, then the test services' defaults. */
export function benchCassandraTarget(options: { readonly contactPoints?: readonly string[]; readonly localDataCenter?: string }): {
  readonly contactPoints: readonly string[];
  readonly localDataCenter: string;
} {
  return {
    contactPoints: options.contactPoints ?? (process.env['DATAFLOW_CASSANDRA_CONTACT_POINTS'] ?? '127.0.0.1:19042').split(','),
    localDataCenter: options.localDataCenter ?? process.env['DATAFLOW_CASSANDRA_LOCAL_DC'] ?? 'datacenter1',
  };
}
