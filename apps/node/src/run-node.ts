/**
 * The body of `npm start` (`main.ts` installs the signal handlers first and
 * then loads this): settings, logger, node, demo, and the stop. The process
 * ends one of four ways, each logged with its cause: a signal (0 after a
 * clean stop, also during the start), a bad setting (78), a failure the node
 * cannot cure such as another node writing the same journal (1), or a stop
 * that does not finish within `DATAFLOW_SHUTDOWN_TIMEOUT_MS` (1). An outage
 * is not an end: the node is `degraded` and logs it until it works again.
 */
import { isDataflowError, type ConfiguredPipelineState } from '@dataflow/core';
import { access } from 'node:fs/promises';
import { DEMO_PIPELINE_ID, demoOutputPath, demoPipeline, fileSinkPath } from './demo/demo-pipeline.js';
import { createWinstonLogger, type LogLevel } from './logging/winston-logger.js';
import { startNode, type DataflowNode } from './node/dataflow-node.js';
import { NodeConfigError } from './node/node-errors.js';
import type { NodeLogger } from './node/node-logger.js';
import { ensureWritableDirectory } from './node/node-persistence.js';
import { nodeSettingsFromEnv, type NodeSettings } from './node/node-settings.js';
import { describeError } from './node/node-supervisor.js';

export const EX_CONFIG = 78;

/** The signals received so far, recorded from the first instant of the process by `main.ts`. */
export interface SignalWatch {
  /** The first SIGINT or SIGTERM, if one came already. */
  readonly first: NodeJS.Signals | undefined;
  /** Resolves with the first SIGINT or SIGTERM. */
  readonly received: Promise<NodeJS.Signals>;
  /** Where to report later signals (the stop is already under way then). */
  useLogger(logger: NodeLogger): void;
}

function resumePoint(state: ConfiguredPipelineState): string {
  const offset = JSON.stringify(state.checkpoint?.sourceOffset ?? 0);
  return `offset ${offset} (${state.metrics.recordsProcessed} records processed, ${state.metrics.batches} batches)`;
}

function pointFields(state: ConfiguredPipelineState): Record<string, unknown> {
  return {
    pipeline_id: state.pipelineId,
    offset: state.checkpoint?.sourceOffset ?? 0,
    total_records: state.metrics.recordsProcessed,
    batches: state.metrics.batches,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * A demo without a checkpoint starts from the beginning and its file sink
 * truncates the output: refuse when an output is there already (the journal
 * was deleted or replaced), unless told to overwrite it.
 */
async function refuseUnknownOutput(output: string, settings: NodeSettings, logger: NodeLogger): Promise<void> {
  const found: string[] = [];
  for (const path of [output, `${output}.1`]) if (await exists(path)) found.push(path);
  if (found.length === 0) return;
  if (settings.overwriteOutput) {
    logger.warn(`the journal has no checkpoint for ${found.join(', ')}; overwriting it (DATAFLOW_OVERWRITE_OUTPUT is set)`, { output });
    return;
  }
  throw new NodeConfigError(
    'DATAFLOW_OVERWRITE_OUTPUT',
    `the output ${found.join(', ')} exists but the journal has no checkpoint for it (was the journal deleted or replaced?); ` +
      'starting from the beginning would truncate it: move it away, or set DATAFLOW_OVERWRITE_OUTPUT=1 to overwrite it',
  );
}

/** Creates and starts the demo on a first run; otherwise makes sure it runs again from its checkpoint. */
async function runDemo(node: DataflowNode, settings: NodeSettings, logger: NodeLogger): Promise<void> {
  const recovered = node.recovered.find((p) => p.pipelineId === DEMO_PIPELINE_ID);
  if (recovered === undefined) {
    const output = demoOutputPath(settings.dataDir);
    await refuseUnknownOutput(output, settings, logger);
    await node.createPipeline(demoPipeline(settings.dataDir), { pipelineId: DEMO_PIPELINE_ID });
    await node.start(DEMO_PIPELINE_ID);
    logger.info(`starting pipeline demo from the beginning; output: ${output}`, { pipeline_id: DEMO_PIPELINE_ID, offset: 0, total_records: 0, batches: 0 });
    return;
  }
  // The path stored in the journal is the one written (with a shared journal, maybe not under this DATAFLOW_DATA_DIR).
  const output = fileSinkPath(recovered.definition) ?? demoOutputPath(settings.dataDir);
  switch (recovered.status) {
    case 'failed':
      logger.warn(
        `pipeline demo had failed (${recovered.error.message}); resetting it and trying again from its last checkpoint at ${resumePoint(recovered)}; output: ${output}`,
        { ...pointFields(recovered), error_tag: recovered.error.tag },
      );
      await node.reset(DEMO_PIPELINE_ID);
      await node.start(DEMO_PIPELINE_ID);
      return;
    case 'running':
      break;
    case 'paused':
      await node.resume(DEMO_PIPELINE_ID);
      break;
    case 'configured':
    case 'stopped':
      await node.start(DEMO_PIPELINE_ID);
      break;
  }
  logger.info(`resuming pipeline demo from ${resumePoint(recovered)}; output: ${output}`, pointFields(recovered));
}

/** The last line about the demo: where it stopped and what the next start does with it. */
function stopLine(demo: ConfiguredPipelineState, logger: NodeLogger): void {
  switch (demo.status) {
    case 'failed':
      logger.error(
        `pipeline demo is failed at ${resumePoint(demo)}: ${demo.error.message}; it does not resume by itself (the next npm start resets it and tries again from there)`,
        { ...pointFields(demo), error_tag: demo.error.tag },
      );
      return;
    case 'stopped':
      logger.info(`pipeline demo had stopped at ${resumePoint(demo)}`, pointFields(demo));
      return;
    default:
      // The pipeline actor does not wait for a checkpoint append already sent when it stops: that one may still land.
      logger.info(
        `stopped pipeline demo at ${resumePoint(demo)}; npm start resumes from there (or one batch later, if the checkpoint being written at the stop landed)`,
        pointFields(demo),
      );
  }
}

/**
 * Runs the node until a signal or a failure and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runNode(signals);
 * ```
 */
export async function runNode(signals: SignalWatch): Promise<number> {
  let settings: NodeSettings;
  try {
    settings = nodeSettingsFromEnv(process.env);
  } catch (error) {
    const logger = createWinstonLogger();
    logger.error(`cannot start: ${describeError(error)}`);
    await logger.close();
    return EX_CONFIG;
  }
  const logger = createWinstonLogger({ level: settings.logLevel satisfies LogLevel });
  signals.useLogger(logger);
  try {
    return await run(settings, signals, logger);
  } finally {
    await logger.close();
  }
}

async function run(settings: NodeSettings, signals: SignalWatch, logger: NodeLogger): Promise<number> {
  if (signals.first !== undefined) {
    logger.info(`${signals.first} received while starting: the node did not start`);
    return 0;
  }
  let node: DataflowNode | undefined;
  let startSignal: NodeJS.Signals | undefined;
  void signals.received.then((signal) => {
    if (startSignal === undefined && node === undefined) {
      startSignal = signal;
      logger.info(`${signal} received while starting: stopping as soon as the start is done`);
    }
  });
  try {
    await ensureWritableDirectory(settings.dataDir, 'DATAFLOW_DATA_DIR');
    node = await startNode({ store: settings.store, logger });
  } catch (error) {
    logger.error(`cannot start: ${describeError(error)}`);
    return isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
  }
  logger.info(`node ${node.nodeId} started; journal: ${node.storeDescription}`);
  // Nothing else may keep the event loop alive (a failed pipeline, a journal being waited for): the node runs until told to stop.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let code = 0;
  try {
    if (startSignal === undefined) {
      await runDemo(node, settings, logger);
      const ended = await Promise.race([signals.received.then((signal) => ({ signal })), node.failure.then((failure) => ({ failure }))]);
      if ('signal' in ended) logger.info(`${ended.signal} received: stopping`);
      else {
        logger.error(`the node stops: ${ended.failure.message}`, { component: ended.failure.component });
        code = 1;
      }
    }
  } catch (error) {
    logger.error(`the demo pipeline could not run: ${describeError(error)}`);
    code = isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
  } finally {
    clearInterval(keepAlive);
  }
  return stop(node, settings, logger, code);
}

async function stop(node: DataflowNode, settings: NodeSettings, logger: NodeLogger, code: number): Promise<number> {
  const timeout = setTimeout(() => {
    logger.error(`the node did not stop within ${settings.shutdownTimeoutMs} ms (DATAFLOW_SHUTDOWN_TIMEOUT_MS); exiting without a clean stop`);
    process.exit(1);
  }, settings.shutdownTimeoutMs);
  try {
    const { pipelines } = await node.shutdown();
    const demo = pipelines.find((p) => p.pipelineId === DEMO_PIPELINE_ID);
    if (demo !== undefined) stopLine(demo, logger);
    else logger.info(`node ${node.nodeId} stopped; no pipeline had been started`);
    return code;
  } catch (error) {
    logger.error(`the node did not stop cleanly: ${describeError(error)}`);
    return 1;
  } finally {
    clearTimeout(timeout);
  }
}
