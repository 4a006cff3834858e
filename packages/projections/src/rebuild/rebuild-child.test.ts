/**
 * A rebuild process for the abandoned-rebuild test (not a test itself: vitest
 * only runs `*.{unit,int,e2e}.test.ts`). Rebuilds `pipeline_metrics_hourly`
 * over the Postgres journal with the given live instances until it is killed;
 * prints `ready` once it holds the rebuild's marker and `done` if it ever
 * ends (the parent kills it once the live instances are paused, before that).
 *
 *   tsx rebuild-child.test.ts '<RebuildChildConfig as JSON>'
 */
import { createPostgresPersistence, pgPoolExecutor } from '@dataflow/persistence';
import pg from 'pg';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { pipelineMetricsHourlyProjection } from '../read-models/pipeline-read-models.js';
import { startRebuild } from './rebuild.js';

export interface RebuildChildConfig {
  readonly url: string;
  readonly schema: string;
  /** The keys of the live instances of pipeline_metrics_hourly (the first is the live projection's). */
  readonly liveKeys: readonly string[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as RebuildChildConfig;
const pool = new pg.Pool({ connectionString: config.url, max: 3 });
const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: config.schema });
const executor = pgPoolExecutor(pool, { ownsPool: false });
const store = new ProjectionOffsetStore(executor, config.schema);
const live = pipelineMetricsHourlyProjection({ schema: config.schema, key: config.liveKeys[0] ?? 'default' });

const { done } = await startRebuild({
  queries: persistence.queries,
  store,
  executor,
  schema: config.schema,
  table: 'pipeline_metrics_hourly',
  live,
  liveRanges: config.liveKeys.map((key) => ({ name: live.id.name, key })),
  shadow: (table, key) => pipelineMetricsHourlyProjection({ schema: config.schema, table, key, groupSize: 50, groupWithinMs: 20 }),
});
process.stdout.write('ready\n');
await done;
process.stdout.write('done\n');
await persistence.close();
await pool.end();
