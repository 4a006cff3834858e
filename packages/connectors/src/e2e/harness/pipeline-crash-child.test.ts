/**
 * The process the crash tests kill (`../*-crash.e2e.test.ts`): it runs one
 * pipeline on the Postgres journal. Started fresh it creates and starts the
 * pipeline; started again after a crash it recovers the pipeline from the
 * journal, which resumes from the last checkpoint on its own and re-drives
 * the batches after it.
 *
 *   node --conditions=@dataflow/source --import tsx pipeline-crash-child.test.ts
 *
 * Settings come from the environment:
 * - CRASH_POSTGRES_URL, CRASH_SCHEMA: the journal;
 * - CRASH_PIPELINE_ID, CRASH_DEFINITION (the pipeline definition as JSON,
 *   built with the connector factory);
 * - CRASH_HANG_AFTER_WRITES (optional): see `hangingAfter`;
 * - CRASH_STOP_AT_RECORDS (optional): for a source that never ends (Kafka),
 *   the pipeline is stopped once its checkpointed record count reaches it;
 * - CRASH_STOP_AT_KAFKA_OFFSETS (optional): for a Kafka source whose sink
 *   commits the offsets itself, the pipeline is stopped once the checkpointed
 *   positions of all partitions add up to it (the record count cannot serve:
 *   a batch committed in Kafka but not yet checkpointed when the process died
 *   is skipped on restart, so the journal never counts it).
 *
 * Stdout carries one JSON object per line: `{ "type": "recovered", "status",
 * "records", "checkpoint" }` with what the journal held at start,
 * `{ "type": "progress", "records" }` after every checkpoint,
 * `{ "type": "hung", "position" }`, then `{ "type": "done", "records",
 * "checkpoint" }` when the pipeline stopped because its source is exhausted or
 * CRASH_STOP_AT_RECORDS was reached (exit code 0). Anything else (a failed
 * pipeline, an error) exits with code 1.
 */
import {
  ask,
  askWithStatus,
  createActorSystem,
  pipelineActor,
  type ActorRef,
  type ConnectorFactory,
  type PipelineCommand,
  type PipelineReply,
  type PipelineResult,
  type PipelineState,
  type Sink,
} from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import pg from 'pg';
import { createDeadLetterTarget, createSink, createSource } from '../../factory/create-connector.js';

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

function optionalNumber(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

const STOP_REASON = 'CRASH_STOP_AT_RECORDS reached';

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const call = (pipeline: ActorRef<PipelineCommand>, build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) =>
  askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 30_000 });

/**
 * The sink, except that its `hangAfterWrites`-th write, once done, reports
 * `{ "type": "hung" }` and never returns: the test kills the process exactly
 * between a sink write and the checkpoint that would cover it.
 */
function hangingAfter(sink: Sink, hangAfterWrites: number | undefined): Sink {
  if (hangAfterWrites === undefined) return sink;
  let writes = 0;
  return {
    type: sink.type,
    ...(sink.pipelinedWrites === undefined ? {} : { pipelinedWrites: sink.pipelinedWrites }),
    ...(sink.commitsSourceOffsets === undefined ? {} : { commitsSourceOffsets: sink.commitsSourceOffsets }),
    open: (context) => sink.open(context),
    close: () => sink.close(),
    write: async (batch) => {
      const result = await sink.write(batch);
      writes++;
      if (writes < hangAfterWrites) return result;
      report({ type: 'hung', position: result.position ?? null });
      return new Promise<never>(() => undefined);
    },
  };
}

/** The sum of the next offsets of a Kafka source checkpoint (`{ groupId, positions: [[topic, partition, "offset"]] }`); 0 for anything else. */
function kafkaPositionsTotal(offset: unknown): number {
  const positions = (offset as { positions?: unknown } | null | undefined)?.positions;
  if (!Array.isArray(positions)) return 0;
  return positions.reduce((sum: number, p: unknown) => sum + (Array.isArray(p) ? Number(p[2]) : 0), 0);
}

async function main(): Promise<number> {
  const pipelineId = setting('CRASH_PIPELINE_ID');
  const definition = JSON.parse(setting('CRASH_DEFINITION')) as Record<string, unknown>;
  const hangAfterWrites = optionalNumber('CRASH_HANG_AFTER_WRITES');
  const stopAtRecords = optionalNumber('CRASH_STOP_AT_RECORDS');
  const stopAtKafkaOffsets = optionalNumber('CRASH_STOP_AT_KAFKA_OFFSETS');
  const reachedTarget = (state: PipelineState): boolean =>
    state.status !== 'empty' &&
    ((stopAtRecords !== undefined && state.metrics.recordsProcessed >= stopAtRecords) ||
      (stopAtKafkaOffsets !== undefined && kafkaPositionsTotal(state.checkpoint?.sourceOffset) >= stopAtKafkaOffsets));
  const pool = new pg.Pool({ connectionString: setting('CRASH_POSTGRES_URL'), max: 4 });
  const persistence = await createPostgresPersistence({ pool, schema: setting('CRASH_SCHEMA'), ensureSchema: true });
  const system = createActorSystem({ name: `crash-${process.pid}` });
  try {
    const connectors: ConnectorFactory = {
      createSource: (d) => createSource(d),
      createSink: (d) => hangingAfter(createSink(d), hangAfterWrites),
      createDeadLetterTarget: (d) => createDeadLetterTarget(d),
    };
    let stopRequested = false;
    const finished = new Promise<PipelineState>((resolve, reject) => {
      let reported: number | undefined;
      system.events.on('pipeline.batch.failed', (event) => report({ type: 'batch-failed', error: String(event.error) }));
      const pipeline = system.spawn(
        pipelineActor({
          pipelineId,
          persistence,
          connectors,
          onStateChange: (state) => {
            if (reported === undefined) {
              // The first state is the one recovered from the journal: what the previous process left.
              reported = state.status === 'empty' ? 0 : state.metrics.recordsProcessed;
              report({ type: 'recovered', status: state.status, records: reported, checkpoint: state.status === 'empty' ? null : state.checkpoint });
            } else if (state.status !== 'empty' && state.metrics.recordsProcessed !== reported) {
              reported = state.metrics.recordsProcessed;
              report({ type: 'progress', records: reported });
            }
            if (state.status === 'stopped' || state.status === 'failed') resolve(state);
            else if (!stopRequested && state.status === 'running' && reachedTarget(state)) {
              stopRequested = true;
              call(pipeline, (replyTo) => ({ type: 'stop', reason: STOP_REASON, replyTo })).catch((error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
            }
          },
        }),
        `pipeline-${pipelineId}`,
      );
      void (async () => {
        // A first run finds no pipeline: create it, then start it. A later run
        // finds it configured (start it), running (it resumes by itself) or stopped.
        const state = await ask<PipelineCommand, PipelineState>(pipeline, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: 30_000 });
        if (state.status === 'empty') await call(pipeline, (replyTo) => ({ type: 'create', definition, replyTo }));
        if (state.status === 'empty' || state.status === 'configured') await call(pipeline, (replyTo) => ({ type: 'start', replyTo }));
      })().catch((error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
    });
    const state = await finished;
    if (state.status === 'stopped' && (state.reason === 'the source is exhausted' || state.reason === STOP_REASON)) {
      report({ type: 'done', records: state.metrics.recordsProcessed, checkpoint: state.checkpoint });
      return 0;
    }
    report({ type: 'error', message: `the pipeline ended ${state.status}: ${JSON.stringify(state.status === 'failed' ? state.error : state)}` });
    return 1;
  } finally {
    await system.terminate();
    await persistence.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    report({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  },
);
