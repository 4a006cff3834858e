import { errors, types } from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { isRetriableDriverError, isUnknownWriteOutcome, resolveSettings } from './cassandra-settings.js';

describe('Cassandra settings', () => {
  it('defaults to QUORUM journal and snapshot consistency, partitions of 500 000 and batches of 100', () => {
    const s = resolveSettings({ keyspace: 'ks' });
    expect(s.writeConsistency).toBe(types.consistencies.quorum);
    expect(s.readConsistency).toBe(types.consistencies.quorum);
    // Snapshots are as durable as the events that may be deleted behind them.
    expect(s.snapshotConsistency).toBe(types.consistencies.quorum);
    expect(resolveSettings({ keyspace: 'ks', writeConsistency: 'LOCAL_QUORUM' }).snapshotConsistency).toBe(types.consistencies.localQuorum);
    expect(s.snapshotLoadAttempts).toBe(3);
    expect(s.targetPartitionSize).toBe(500_000);
    expect(s.maxBatchSize).toBe(100);
  });

  it('takes named consistency levels', () => {
    const s = resolveSettings({ keyspace: 'ks', writeConsistency: 'LOCAL_QUORUM', snapshotConsistency: 'LOCAL_ONE' });
    expect(s.writeConsistency).toBe(types.consistencies.localQuorum);
    expect(s.snapshotConsistency).toBe(types.consistencies.localOne);
  });

  it('refuses sizes that cannot work', () => {
    expect(() => resolveSettings({ keyspace: 'ks', maxBatchSize: 0 })).toThrow(RangeError);
    expect(() => resolveSettings({ keyspace: 'ks', targetPartitionSize: 10, maxBatchSize: 100 })).toThrow(RangeError);
    expect(() => resolveSettings({ keyspace: 'ks', maxInFlight: 1.5 })).toThrow(RangeError);
  });

  it('times a lease locally for the TTL in whole seconds, less the second the server rounds off, less the margin', () => {
    expect(resolveSettings({ keyspace: 'ks' }).leaseValidityMs).toBe(15_000);
    expect(resolveSettings({ keyspace: 'ks', leaseTtlMs: 10_000 }).leaseValidityMs).toBe(5000);
    expect(resolveSettings({ keyspace: 'ks', leaseTtlMs: 2500, leaseSafetyMarginMs: 500 }).leaseValidityMs).toBe(1500);
    // Less validity than margin leaves no room to renew before a write must stop.
    expect(() => resolveSettings({ keyspace: 'ks', leaseTtlMs: 2000, leaseSafetyMarginMs: 1000 })).toThrow(RangeError);
    let t = 0;
    expect(resolveSettings({ keyspace: 'ks', leaseClock: () => ++t }).leaseClock()).toBe(1);
  });

  it('classifies driver failures: timeouts and unavailable replicas are retriable, invalid queries are not', () => {
    const writeTimeout = new errors.ResponseError(types.responseErrorCodes.writeTimeout, 'timeout');
    expect(isRetriableDriverError(writeTimeout)).toBe(true);
    expect(isUnknownWriteOutcome(writeTimeout)).toBe(true);
    expect(isRetriableDriverError(new errors.ResponseError(types.responseErrorCodes.unavailableException, 'down'))).toBe(true);
    expect(isRetriableDriverError(new errors.NoHostAvailableError({}))).toBe(true);
    expect(isRetriableDriverError(new errors.OperationTimedOutError('slow'))).toBe(true);
    const invalid = new errors.ResponseError(types.responseErrorCodes.invalid, 'bad');
    expect(isRetriableDriverError(invalid)).toBe(false);
    expect(isUnknownWriteOutcome(invalid)).toBe(false);
    expect(isRetriableDriverError(new Error('other'))).toBe(false);
  });
});
