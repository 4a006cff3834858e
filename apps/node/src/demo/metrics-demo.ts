/**
 * The live demo of the default configuration: the node scrapes its own
 * Prometheus endpoint every 5 s (`prometheus-scrape`, one record per sample)
 * and writes the samples into the table `demo.prometheus_metrics` of its own
 * database (the embedded PGlite under `./data`, or the Postgres server of
 * `postgres.url`), upserting on the series and scrape time so a replayed
 * batch rewrites the same rows. The read models count its batches, so the
 * console and `GET /api/v1/pipelines` show it growing within seconds.
 */
import type { PipelineDefinitionInput } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';

/** The id and name of the metrics demo pipeline. */
export const METRICS_DEMO_PIPELINE_ID = 'node-metrics';

/** The schema and table the demo writes. */
export const METRICS_DEMO_TABLE = { schema: 'demo', table: 'prometheus_metrics' } as const;

/**
 * Creates the demo's table when it is missing (the node does this on its own
 * database before it creates the pipeline).
 */
export async function ensureMetricsDemoTable(db: SqlExecutor): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${METRICS_DEMO_TABLE.schema}`);
  await db.query(
    `CREATE TABLE IF NOT EXISTS ${METRICS_DEMO_TABLE.schema}.${METRICS_DEMO_TABLE.table} (
       metric_name text NOT NULL,
       job text NOT NULL,
       instance text NOT NULL,
       labels jsonb NOT NULL,
       scraped_at timestamptz NOT NULL,
       value double precision,
       PRIMARY KEY (metric_name, job, instance, labels, scraped_at)
     )`,
  );
}

/**
 * The demo pipeline scraping `metricsUrl` (the node's own `/metrics`).
 *
 * @example
 * ```ts
 * await node.createPipeline(metricsDemoPipeline('http://127.0.0.1:9095/metrics'), { pipelineId: METRICS_DEMO_PIPELINE_ID });
 * ```
 */
export function metricsDemoPipeline(metricsUrl: string): PipelineDefinitionInput {
  return {
    name: 'node-metrics',
    description: "Scrapes this node's own Prometheus endpoint every 5 s into demo.prometheus_metrics of the node's database",
    source: { type: 'prometheus-scrape', intervalMs: 5_000, output: 'samples', targets: [{ url: metricsUrl, job: 'dataflow' }] },
    transforms: [],
    sink: {
      type: 'postgres',
      schema: METRICS_DEMO_TABLE.schema,
      table: METRICS_DEMO_TABLE.table,
      columns: { metric_name: 'metric_name', job: 'job', instance: 'instance', labels: 'labels', scraped_at: 'timestamp', value: 'value' },
      upsert: { key: ['metric_name', 'job', 'instance', 'labels', 'scraped_at'] },
    },
    batch: { size: 1_000, maxWaitMs: 500 },
  };
}
