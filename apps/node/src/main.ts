/**
 * `npm start`: a DataFlow node on the embedded PGlite journal under `./data`
 * (or `$DATAFLOW_DATA_DIR`; `$DATAFLOW_POSTGRES_URL` puts the journal on a
 * Postgres server) running the demo pipeline. Standard output carries the
 * console sink's batch lines, standard error the node's JSON log lines.
 * SIGINT / SIGTERM stop it gracefully: the batch in flight is abandoned and
 * the next start resumes from the last checkpoint. Exit codes: 0 after a
 * clean stop, 78 (EX_CONFIG) for a bad setting, 1 for any other failure.
 */
import { isDataflowError, type ConfiguredPipelineState } from '@dataflow/core';
import { DEMO_PIPELINE_ID, demoOutputPath, demoPipeline } from './demo/demo-pipeline.js';
import { createWinstonLogger, type LogLevel } from './logging/winston-logger.js';
import { startNode, type DataflowNode } from './node/dataflow-node.js';
import type { NodeLogger } from './node/node-logger.js';
import { ensureWritableDirectory } from './node/node-persistence.js';
import { nodeSettingsFromEnv, type NodeSettings } from './node/node-settings.js';

const EX_CONFIG = 78;

/**
 * Resolves with the first SIGINT or SIGTERM. Later ones are ignored: the
 * stop is already under way (SIGKILL ends a stuck one). `npm start` runs node
 * itself with tsx as a loader, not the tsx CLI, whose signal relay kills a
 * child that does not answer within 30 ms (PGlite can hold the event loop
 * longer), which would turn a graceful stop into a crash.
 */
function firstSignal(): { received: Promise<NodeJS.Signals>; logger: (logger: NodeLogger) => void } {
  let log: NodeLogger | undefined;
  let count = 0;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      count++;
      if (count === 1) resolve(signal);
      else log?.debug(`${signal} received again: the node is already stopping`);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return { received, logger: (l) => (log = l) };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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

/** Creates and starts the demo on a first run; otherwise makes sure it runs again from its checkpoint. */
async function runDemo(node: DataflowNode, dataDir: string, logger: NodeLogger): Promise<void> {
  const output = demoOutputPath(dataDir);
  const recovered = node.recovered.find((p) => p.pipelineId === DEMO_PIPELINE_ID);
  if (recovered === undefined) {
    await node.createPipeline(demoPipeline(dataDir), { pipelineId: DEMO_PIPELINE_ID });
    await node.start(DEMO_PIPELINE_ID);
    logger.info(`starting pipeline demo from the beginning; output: ${output}`, { pipeline_id: DEMO_PIPELINE_ID, offset: 0, total_records: 0, batches: 0 });
    return;
  }
  switch (recovered.status) {
    case 'running':
      break;
    case 'paused':
      await node.resume(DEMO_PIPELINE_ID);
      break;
    case 'failed':
      logger.warn(`pipeline demo had failed (${recovered.error.message}); resetting it`, { pipeline_id: DEMO_PIPELINE_ID });
      await node.reset(DEMO_PIPELINE_ID);
      await node.start(DEMO_PIPELINE_ID);
      break;
    case 'configured':
    case 'stopped':
      await node.start(DEMO_PIPELINE_ID);
      break;
  }
  logger.info(`resuming pipeline demo from ${resumePoint(recovered)}; output: ${output}`, pointFields(recovered));
}

async function main(): Promise<number> {
  const signals = firstSignal();
  let settings: NodeSettings;
  try {
    settings = nodeSettingsFromEnv(process.env);
  } catch (error) {
    const logger = createWinstonLogger();
    logger.error(`cannot start: ${describe(error)}`);
    await logger.close();
    return EX_CONFIG;
  }
  const logger = createWinstonLogger({ level: settings.logLevel satisfies LogLevel });
  signals.logger(logger);
  let node: DataflowNode;
  try {
    await ensureWritableDirectory(settings.dataDir, 'DATAFLOW_DATA_DIR');
    node = await startNode({ store: settings.store, logger });
  } catch (error) {
    logger.error(`cannot start: ${describe(error)}`);
    await logger.close();
    return isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
  }
  logger.info(`node ${node.nodeId} started; journal: ${node.storeDescription}`);
  let code = 0;
  try {
    await runDemo(node, settings.dataDir, logger);
    const signal = await signals.received;
    logger.info(`${signal} received: stopping`);
  } catch (error) {
    logger.error(`the demo pipeline could not run: ${describe(error)}`);
    code = 1;
  }
  try {
    const { pipelines } = await node.shutdown();
    const demo = pipelines.find((p) => p.pipelineId === DEMO_PIPELINE_ID);
    if (demo !== undefined) {
      logger.info(`stopped pipeline demo at ${resumePoint(demo)}; npm start resumes from there`, pointFields(demo));
    }
  } catch (error) {
    logger.error(`the node did not stop cleanly: ${describe(error)}`);
    code = 1;
  }
  await logger.close();
  return code;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`dataflow node crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
