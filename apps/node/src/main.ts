/**
 * `npm start`: a DataFlow node on the embedded PGlite journal under `./data`
 * (or `$DATAFLOW_DATA_DIR`; `$DATAFLOW_POSTGRES_URL` puts the journal on a
 * Postgres server) running the demo pipeline. Standard output carries the
 * console sink's batch lines, standard error the node's JSON log lines.
 * SIGINT / SIGTERM stop it gracefully: the batch in flight is abandoned and
 * the next start resumes from the last checkpoint. Exit codes: 0 after a
 * clean stop, 78 (EX_CONFIG) for a bad setting, 1 for any other failure
 * (each logged with its cause; see `run-node.ts`).
 *
 * This file takes the signals before anything else is loaded (loading the
 * node takes from a few hundred milliseconds to seconds, and a signal in
 * that time used to kill the process with nothing printed), then loads the
 * node. `npm start` preloads `bin/early-signals.mjs`, which records signals
 * even before tsx is loaded; without it, this file installs its own handlers.
 * `npm start` runs node itself (`exec`, with tsx as a loader, not the tsx
 * CLI, whose signal relay kills a child that does not answer within 30 ms),
 * so a signal sent to the npm process alone reaches this process.
 */
import { exitWhenStopped, guardSilentExit, watchSignals } from './signals.js';

const signals = watchSignals();
const finished = guardSilentExit();
try {
  const { runNode } = await import('./run-node.js');
  exitWhenStopped(await runNode(signals));
} catch (error) {
  process.stderr.write(`dataflow node crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  exitWhenStopped(1);
} finally {
  finished();
}
