#!/usr/bin/env node
/**
 * The `dataflow` executable (`bin` of @dataflow/node; from source in the
 * workspace: `npm run dataflow -- <command>`). See `cli.ts` for the commands
 * and exit codes.
 */
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv.slice(2));
