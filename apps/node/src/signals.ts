/**
 * SIGINT / SIGTERM / SIGHUP (all three a clean stop) from the first instant of a node process: `main.ts`
 * (`npm start`) and `dataflow start` call `watchSignals()` before they load
 * the node (loading takes from a few hundred milliseconds to seconds, and a
 * signal in that time used to kill the process with nothing printed). When
 * `bin/early-signals.mjs` was preloaded (`npm start` does), the signals it
 * recorded even before the TypeScript loader are taken from it.
 */
import type { NodeLogger } from './node/node-logger.js';
import type { SignalWatch, StopCause } from './run-node.js';

/** What `bin/early-signals.mjs` leaves when it was preloaded. */
interface EarlySignals {
  subscribe(subscriber: (signal: StopCause) => void): void;
}

/**
 * Installs the handlers and returns what `runNode` needs to know of them.
 *
 * @example
 * ```ts
 * const signals = watchSignals();
 * const { runNode } = await import('./run-node.js');
 * process.exitCode = await runNode(signals);
 * ```
 */
export function watchSignals(): SignalWatch {
  let first: StopCause | undefined;
  let log: NodeLogger | undefined;
  let resolveFirst!: (signal: StopCause) => void;
  const received = new Promise<StopCause>((resolve) => (resolveFirst = resolve));
  const onSignal = (signal: StopCause): void => {
    if (first === undefined) {
      first = signal;
      resolveFirst(signal);
    } else {
      // The stop is already under way (it ends within the shutdown timeout; SIGKILL ends it at once).
      log?.info(`${signal === 'parent-exit' ? 'the parent process (npm) is gone' : `${signal} received`} again: the node is already stopping`);
    }
  };
  const early = (globalThis as Record<symbol, unknown>)[Symbol.for('dataflow.node.early-signals')] as EarlySignals | undefined;
  if (early === undefined) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // A closed terminal or a process manager's hang-up: Node's default would end the process at once (exit 129), without the clean stop.
    process.on('SIGHUP', onSignal);
  } else {
    early.subscribe(onSignal);
  }
  return {
    get first() {
      return first;
    },
    received,
    useLogger: (logger) => (log = logger),
  };
}

/**
 * Makes an exit with nothing left running (the node was meant to run until
 * told to stop) an exit with code 1 and a line saying so, never a silent 0.
 * Returns the function to call once the node has really finished.
 */
export function guardSilentExit(): () => void {
  let finished = false;
  process.on('beforeExit', () => {
    if (finished) return;
    finished = true;
    process.stderr.write('dataflow node: nothing was left running, but the node had not stopped; exiting with 1\n');
    process.exitCode = 1;
  });
  return () => {
    finished = true;
  };
}

/** How long a stopped node may take to exit by itself before it is ended. */
export const EXIT_GRACE_MS = 2_000;

/**
 * Ends the process with `code` once the node has stopped: at once when
 * nothing is left running, else after `graceMs`. A client library can keep a
 * connection open after its own shutdown (a Cassandra driver connection was
 * seen holding the process 30 s, and once until it was killed, after the
 * node had logged its clean stop): a process manager waiting for the exit
 * must not wait on it. Everything the node owns is closed by then (journal,
 * sinks, the API), and the logs are flushed.
 */
export function exitWhenStopped(code: number, graceMs = EXIT_GRACE_MS): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), graceMs).unref();
}
