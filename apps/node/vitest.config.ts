import { mergeConfig } from 'vitest/config';
import { dataflowVitestConfig } from '../../scripts/test/vitest.base.js';

// Node processes started by the tests run side by side: each takes free ports for its API and metrics (0) instead of 8080 / 9095.
export default mergeConfig(dataflowVitestConfig({ services: true }), { test: { env: { DATAFLOW_API_PORT: '0', DATAFLOW_METRICS_PORT: '0' } } });
