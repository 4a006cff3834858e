/**
 * Typed instrumentation events. Core modules report what happens (an actor
 * failed, a message went to dead letters, a journal write failed) as plain,
 * typed events; applications subscribe and turn them into metrics or logs.
 * Nothing in core prints, except the default report of a listener that
 * throws (`process.emitWarning`, once per listener; see
 * {@link InstrumentationOptions.onListenerError}).
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
import { DataflowError } from '../errors/dataflow-error.js';

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
 * A listener threw while an event was delivered. The emitter caught it, so the
 * emitting code and the other listeners went on; `cause` is what the listener
 * threw. Not retriable: the same listener fails the same way.
 */
export class InstrumentationListenerError extends DataflowError<'instrumentation/listener-failed'> {
  constructor(
    /** The type of the event the listener failed on. */
    readonly eventType: string,
    cause: unknown,
  ) {
    super('instrumentation/listener-failed', `An instrumentation listener of '${eventType}' threw: ${messageOf(cause)}`, { retriable: false, cause });
  }
}

/**
 * A typed event emitter. A listener that throws never reaches the emitting
 * code: the error is counted, reported once per listener, and the other
 * listeners still get the event.
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
  /** How many times a listener has thrown since the emitter was created (each throw was isolated). */
  readonly listenerErrors: number;
}

/** Options of {@link createInstrumentation}. */
export interface InstrumentationOptions {
  /**
   * Reports a throwing listener: called the first time each listener throws
   * (later throws of the same listener are only counted in
   * `listenerErrors`, so a listener broken for good does not flood the log).
   * The default hands the error to `process.emitWarning`, which Node prints
   * once to stderr and applications can observe with `process.on('warning')`;
   * pass a function that writes to your logger instead. Whatever it does, a
   * listener error is never rethrown: it would break the actor that emitted
   * or, rethrown later, kill the process.
   */
  readonly onListenerError?: (error: InstrumentationListenerError) => void;
}

const emitWarning = (error: InstrumentationListenerError): void => {
  process.emitWarning(error);
};

/**
 * Creates an emitter for the events `E`.
 *
 * @example
 * ```ts
 * const events = createInstrumentation<InstrumentationEvent>({ onListenerError: (e) => logger.warn(e.message, { cause: e.cause }) });
 * const off = events.on('actor.dead-letter', (e) => deadLetters.push(e));
 * events.listenerErrors; // 0 until a listener throws
 * ```
 */
export function createInstrumentation<E extends { readonly type: string } = InstrumentationEvent>(
  options: InstrumentationOptions = {},
): Instrumentation<E> {
  const report = options.onListenerError ?? emitWarning;
  const byType = new Map<string, Set<(event: E) => void>>();
  /** Listeners that have thrown and been reported once. */
  const reported = new WeakSet<(event: E) => void>();
  let listenerErrors = 0;

  const failed = (listener: (event: E) => void, event: E, error: unknown): void => {
    listenerErrors++;
    if (reported.has(listener)) return;
    reported.add(listener);
    const failure = new InstrumentationListenerError(event.type, error);
    try {
      report(failure);
    } catch (reporterError) {
      // The reporter itself is broken: fall back to the default rather than lose the report.
      if (report !== emitWarning) emitWarning(new InstrumentationListenerError(event.type, reporterError));
    }
  };

  const deliver = (listeners: Set<(event: E) => void> | undefined, event: E): void => {
    if (listeners === undefined) return;
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (error) {
        failed(listener, event, error);
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
    get listenerErrors(): number {
      return listenerErrors;
    },
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
