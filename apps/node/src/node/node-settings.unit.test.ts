/** `DATAFLOW_MIGRATE`: what a node on a Postgres server does about its schema at start. */
import { describe, expect, it } from 'vitest';
import { nodeSettingsFromEnv } from './node-settings.js';

describe('nodeSettingsFromEnv: DATAFLOW_MIGRATE', () => {
  const url = 'postgres://postgres@127.0.0.1:5432/postgres';

  it('checks by default and migrates at start only when asked', () => {
    expect(nodeSettingsFromEnv({ DATAFLOW_POSTGRES_URL: url }, '/tmp').store).toEqual({ type: 'postgres', url, migrate: 'check' });
    expect(nodeSettingsFromEnv({ DATAFLOW_POSTGRES_URL: url, DATAFLOW_MIGRATE: ' AUTO ' }, '/tmp').store).toEqual({ type: 'postgres', url, migrate: 'auto' });
    // The embedded journal always migrates itself: the setting does not apply.
    expect(nodeSettingsFromEnv({ DATAFLOW_MIGRATE: 'auto' }, '/tmp').store).toEqual({ type: 'pglite', dataDir: '/tmp/data' });
  });

  it('refuses another value naming the variable', () => {
    expect(() => nodeSettingsFromEnv({ DATAFLOW_POSTGRES_URL: url, DATAFLOW_MIGRATE: 'yes' }, '/tmp')).toThrow(
      expect.objectContaining({ tag: 'node/invalid-config', message: 'DATAFLOW_MIGRATE: is "yes"; expected check or auto' }),
    );
  });
});
