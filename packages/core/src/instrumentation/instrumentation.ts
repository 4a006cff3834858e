/**
 * Typed instrumentation events. Core modules report what happens (an actor
 * failed, a message went to dead letters, a journal write failed) as plain,
 * typed events; applications subscribe and turn them into metrics or logs.
 * Nothing in core prints.
 *
 * The set of events is open: a module adds its own event types by merging into
 * {@link InstrumentationEventMap}:
 *
 * ```ts
 * declare module '@dataflow/core' {
 *   interface InstrumentationEventMap {
 *     'journal.write.failed': { readonly type: 'journal.write.failed'; readonly persistenceId: string; readonly error: unknown };
 *   }
 * }
 * ```
 */

/**
 * Every instrumentation event type of DataFlow, keyed by its `type`. Modules
 * extend it through declaration merging; each value must have `type` equal to
 * its key.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface InstrumentationEventMap {}

/** The union of all known instrumentation events. */
export type InstrumentationEvent = InstrumentationEventMap[keyof InstrumentationEventMap];

/** Removes a listener. Calling it twice does nothing. */
export type Unsubscribe = () => void;

/**
 * A typed event emitter.
 *
 * @example
 * ```ts
 * const off = system.events.on('actor.restarted', (e) => metrics.restarts.inc({ path: e.path }));
 * system.events.on('*', (e) => logger.debug(e.type, e));
 * off();
 * ```
 */
export interface Instrumentation<E extends { readonly type: string }> {
  /** Listens to events of one type, or to all of them with `'*'`. */
  on<T extends E['type']>(type: T, listener: (event: Extract<E, { readonly type: T }>) => void): Unsubscribe;
  on(type: '*', listener: (event: E) => void): Unsubscribe;
  /** Delivers `event` synchronously to the listeners of its type, then to the `'*'` listeners. */
  emit(event: E): void;
}

/** Options of {@link createInstrumentation}. */
export interface InstrumentationOptions {
  /**
   * Called when a listener throws. The default rethrows the error outside the
   * emitting code (as an uncaught exception, like Node's `EventEmitter`), so a
   * broken listener neither breaks the actor that emitted nor goes unnoticed.
   */
  readonly onListenerError?: (error: unknown, event: { readonly type: string }) => void;
}

const rethrowLater = (error: unknown): void => {
  queueMicrotask(() => {
    throw error;
  });
};

/**
 * Creates an emitter for the events `E`.
 *
 * @example
 * ```ts
 * const events = createInstrumentation<InstrumentationEvent>();
 * const off = events.on('actor.dead-letter', (e) => deadLetters.push(e));
 * ```
 */
export function createInstrumentation<E extends { readonly type: string } = InstrumentationEvent>(
  options: InstrumentationOptions = {},
): Instrumentation<E> {
  const onListenerError = options.onListenerError ?? rethrowLater;
  const byType = new Map<string, Set<(event: E) => void>>();

  const deliver = (listeners: Set<(event: E) => void> | undefined, event: E): void => {
    if (listeners === undefined) return;
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (error) {
        onListenerError(error, event);
      }
    }
  };

  return {
    on(type: string, listener: (event: never) => void): Unsubscribe {
      let listeners = byType.get(type);
      if (listeners === undefined) {
        listeners = new Set();
        byType.set(type, listeners);
      }
      const entry = listener as (event: E) => void;
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    emit(event: E): void {
      deliver(byType.get(event.type), event);
      deliver(byType.get('*'), event);
    },
  };
}
