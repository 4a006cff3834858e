// ESLint flat config for the whole workspace: type-checked rules from
// typescript-eslint, and Nx module boundaries that keep dependencies pointing
// one way: core <- persistence <- connectors / projections <- apps/node.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

const moduleBoundaries = (connectorsBanned) => [
  'error',
  {
    enforceBuildableLibDependency: false,
    allow: ['@dataflow/test-env'],
    depConstraints: [
      { sourceTag: 'scope:core', onlyDependOnLibsWithTags: ['scope:core'], bannedExternalImports: drivers },
      { sourceTag: 'scope:persistence', onlyDependOnLibsWithTags: ['scope:core', 'scope:persistence'], bannedExternalImports: ['nact', 'kafkajs', 'ioredis', 'prom-client', 'winston', 'winston-*'] },
      { sourceTag: 'scope:connectors', onlyDependOnLibsWithTags: ['scope:core', 'scope:persistence', 'scope:connectors'], bannedExternalImports: connectorsBanned },
      { sourceTag: 'scope:projections', onlyDependOnLibsWithTags: ['scope:core', 'scope:persistence', 'scope:projections'], bannedExternalImports: ['nact', 'prom-client', 'winston', 'winston-*'] },
      { sourceTag: 'scope:app', onlyDependOnLibsWithTags: ['scope:core', 'scope:persistence', 'scope:connectors', 'scope:projections', 'scope:app'], bannedExternalImports: ['nact'] },
    ],
  },
];

const drivers = ['cassandra-driver', 'kafkajs', 'pg', 'pg-*', '@electric-sql/pglite', 'ioredis', 'prom-client', 'winston', 'winston-*'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.nx/**', '**/coverage/**', 'data/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      '@nx/enforce-module-boundaries': moduleBoundaries(['nact', 'prom-client', 'winston', 'winston-*']),
    },
  },
  {
    // The connectors' tests and benchmarks serve Prometheus exporters with prom-client (a dev dependency); the library itself does not.
    files: ['packages/connectors/src/**/*.test.ts', 'packages/connectors/src/bench/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': moduleBoundaries(['nact', 'winston', 'winston-*']) },
  },
  {
    // Tests may log and use the services helper.
    files: ['**/*.test.ts', '**/bench/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    // Test configs share the workspace's vitest settings by relative import;
    // README examples import their own package by name, as users do.
    files: ['**/vitest.config.ts', 'packages/*/examples/**/*.ts'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
