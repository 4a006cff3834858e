/**
 * Shared vitest settings for every DataFlow package.
 *
 * Tests run against the TypeScript sources of workspace packages (the
 * `@dataflow/source` export condition), so a test never needs a prior build.
 * Packages whose tests touch real services pass `services: true`: the global
 * setup then brings Kafka, Cassandra, Postgres and Redis up once per run
 * through `scripts/services.sh` and hands the connection settings to tests.
 */
import { fileURLToPath } from 'node:url';
import { defaultServerConditions } from 'vite';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

export interface DataflowVitestOptions {
  /** Bring the real services up before the run (packages with `*.int.test.ts`). */
  readonly services?: boolean;
  /** Allow a run with no test file (only for packages whose first tests have not landed). */
  readonly passWithNoTests?: boolean;
}

const conditions = ['@dataflow/source', ...defaultServerConditions];

export function dataflowVitestConfig(options: DataflowVitestOptions = {}): ViteUserConfig {
  return defineConfig({
    resolve: {
      conditions,
      alias: { '@dataflow/test-env': fileURLToPath(new URL('./services.ts', import.meta.url)) },
    },
    ssr: { resolve: { conditions, externalConditions: conditions } },
    test: {
      include: ['src/**/*.{unit,int,e2e}.test.ts'],
      globalSetup: options.services === true ? [fileURLToPath(new URL('./global-setup.ts', import.meta.url))] : [],
      testTimeout: 30_000,
      hookTimeout: 180_000,
      pool: 'forks',
      passWithNoTests: options.passWithNoTests ?? false,
      reporters: ['default'],
    },
  });
}
