/**
 * The status observer: typed subscriptions with unsubscribe, the last event
 * per projection instance, and a throwing listener kept away from the runner
 * (no store involved).
 */
import { isDataflowError, type InstrumentationListenerError } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { createProjectionStatusObserver } from './projection-status-observer.js';
import type { ProjectionStatusEvent } from './projection-runner.js';

const a = { name: 'a', key: 'default' };
const b = { name: 'a', key: 'slice-1' };

describe('projection status observer', () => {
  it('delivers events by type and to * listeners until unsubscribed', () => {
    const observer = createProjectionStatusObserver();
    const progress: number[] = [];
    const all: string[] = [];
    const offProgress = observer.on('progress', (e) => progress.push(e.events));
    observer.on('*', (e) => all.push(e.type));
    observer.onStatus({ type: 'started', id: a, offset: undefined });
    observer.onStatus({ type: 'progress', id: a, offset: { kind: 'sequence', value: 3 }, events: 3, lastEventAt: 10 });
    offProgress();
    observer.onStatus({ type: 'progress', id: a, offset: { kind: 'sequence', value: 4 }, events: 1, lastEventAt: 11 });
    observer.onStatus({ type: 'stopped', id: a, reason: 'paused' });
    expect(progress).toEqual([3]);
    expect(all).toEqual(['started', 'progress', 'progress', 'stopped']);
  });

  it('keeps the last event per name and key', () => {
    const observer = createProjectionStatusObserver();
    expect(observer.last(a)).toBeUndefined();
    const failed: ProjectionStatusEvent = { type: 'error', id: b, error: new Error('x'), attempt: 1, outcome: 'retry' };
    observer.onStatus({ type: 'started', id: a, offset: undefined });
    observer.onStatus(failed);
    observer.onStatus({ type: 'stopped', id: a, reason: 'aborted' });
    expect(observer.last(a)).toEqual({ type: 'stopped', id: a, reason: 'aborted' });
    expect(observer.last(b)).toBe(failed);
  });

  it('isolates a throwing listener: the emitter goes on, the failure is reported and counted', () => {
    const reported: InstrumentationListenerError[] = [];
    const observer = createProjectionStatusObserver({ onListenerError: (error) => reported.push(error) });
    const seen: string[] = [];
    observer.on('started', () => {
      throw new Error('listener bug');
    });
    observer.on('started', (e) => seen.push(e.id.name));
    expect(() => observer.onStatus({ type: 'started', id: a, offset: undefined })).not.toThrow();
    observer.onStatus({ type: 'started', id: a, offset: undefined });
    expect(seen).toEqual(['a', 'a']);
    expect(observer.listenerErrors).toBe(2);
    expect(reported).toHaveLength(1);
    expect(isDataflowError(reported[0], 'instrumentation/listener-failed')).toBe(true);
  });
});
