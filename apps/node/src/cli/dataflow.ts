#!/usr/bin/env node
/**
 * The `dataflow` executable (`bin` of @dataflow/node, built to
 * `dist/cli/dataflow.js`; from source in the workspace: `npm run dataflow --
 * <command>`). See `cli.ts` for the commands and exit codes. For `start`,
 * SIGINT / SIGTERM are taken before anything else is loaded, as `npm start`
 * does (`signals.ts`); the other commands keep the default signal behaviour.
 */
import { exitWhenStopped, guardSilentExit, watchSignals } from '../signals.js';

const starting = process.argv[2] === 'start';
const signals = starting ? watchSignals() : undefined;
const finished = starting ? guardSilentExit() : () => undefined;
try {
  const { runCli } = await import('./cli.js');
  const code = await runCli(process.argv.slice(2), undefined, signals);
  // A stopped node exits even when a client library left a handle open.
  if (starting) exitWhenStopped(code);
  else process.exitCode = code;
} finally {
  finished();
}
