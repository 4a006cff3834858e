/**
 * The status observer of projections: typed `started`, `progress`, `error`
 * and `stopped` events with an `on()` that returns its unsubscribe function
 * (core's `Instrumentation`), for metrics and logs; plus the last event per
 * projection instance, for a status endpoint. A throwing listener is
 * isolated and reported by core's rules, never reaching the runner.
 */
import { createInstrumentation, type Instrumentation, type InstrumentationOptions, type Unsubscribe } from '@dataflow/core';
import type { ProjectionId } from '../offset-store/projection-offset-store.js';
import type { ProjectionStatusEvent } from './projection-runner.js';

export interface ProjectionStatusObserver extends Instrumentation<ProjectionStatusEvent> {
  /** Hand this to the runner as `deps.onStatus`. */
  readonly onStatus: (event: ProjectionStatusEvent) => void;
  /** The last event of the projection instance, undefined before its first. */
  last(id: ProjectionId): ProjectionStatusEvent | undefined;
}

/**
 * Creates a status observer.
 *
 * @example
 * ```ts
 * const status = createProjectionStatusObserver();
 * const off = status.on('progress', (e) => appliedCounter.inc({ projection: e.id.name }, e.events));
 * spawnProjection(system, projection, { queries, store, executor, onStatus: status.onStatus });
 * off();
 * ```
 */
export function createProjectionStatusObserver(options: InstrumentationOptions = {}): ProjectionStatusObserver {
  const events = createInstrumentation<ProjectionStatusEvent>(options);
  const lastById = new Map<string, ProjectionStatusEvent>();
  const keyOf = (id: ProjectionId) => JSON.stringify([id.name, id.key]);
  const emit = (event: ProjectionStatusEvent): void => {
    lastById.set(keyOf(event.id), event);
    events.emit(event);
  };
  return {
    on: (type: '*', listener: (event: ProjectionStatusEvent) => void): Unsubscribe => events.on(type, listener),
    emit,
    onStatus: emit,
    last: (id) => lastById.get(keyOf(id)),
    get listenerErrors(): number {
      return events.listenerErrors;
    },
  };
}
