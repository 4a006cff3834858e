/**
 * Preloaded by `npm start` before tsx and the node (`node --import
 * ./apps/node/bin/early-signals.mjs --import tsx ... main.ts`): records a
 * SIGINT, SIGTERM or SIGHUP from the first instant of the process, so a signal that
 * comes while the node is still loading (seconds on a loaded machine) is
 * reported and ends it cleanly instead of killing it with nothing printed.
 * Plain JavaScript: it must run before the TypeScript loader. `main.ts`
 * subscribes through `globalThis[Symbol.for('dataflow.node.early-signals')]`.
 */
const subscribers = [];
let first;
const onSignal = (signal) => {
  first ??= signal;
  for (const subscriber of subscribers) subscriber(signal);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A closed terminal or a process manager's hang-up: a clean stop too (Node's default for SIGHUP ends the process at once, exit 129).
process.on('SIGHUP', onSignal);
// npm passes SIGINT and SIGTERM on to the node, but a SIGHUP to npm's own pid (a process manager's, or a closed terminal's)
// ends npm alone: the node would run on as an orphan holding the data directory. Its parent changing is a stop too.
const parentPid = process.ppid;
const parentWatch = setInterval(() => {
  if (process.ppid === parentPid) return;
  clearInterval(parentWatch);
  onSignal('parent-exit');
}, 500);
parentWatch.unref();
globalThis[Symbol.for('dataflow.node.early-signals')] = {
  /** Calls `subscriber` with every signal from now on, and at once with the first one if it already came. */
  subscribe(subscriber) {
    subscribers.push(subscriber);
    if (first !== undefined) subscriber(first);
  },
};
