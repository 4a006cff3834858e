import { dataflowVitestConfig } from '../../scripts/test/vitest.base.js';

export default dataflowVitestConfig({ services: true });
