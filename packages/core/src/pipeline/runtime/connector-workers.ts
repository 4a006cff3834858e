/**
 * Sources, sinks and dead-letter targets run inside child actors of their
 * pipeline: each worker owns one connector, serialises the calls to it, and
 * answers every request with a result instead of throwing, so that the
 * pipeline applies its retry policy (recorded in the journal) to connector
 * failures. A worker closes its connector when it stops; a crash of the
 * worker itself is supervised by the pipeline.
 */
import type { ActorRef } from '../../actor/actor-ref.js';
import { behavior, type Behavior } from '../../actor/behavior.js';
import type { DeadLetter, DeadLetterTarget } from '../../connector/dead-letter.js';
import type { Sink, SinkBatch, SinkPosition, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceOffset } from '../../connector/source.js';

/** The answer to a worker request. */
export type WorkerResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export type SourceWorkerMessage =
  | { readonly type: 'open'; readonly checkpoint: SourceOffset | undefined; readonly replyTo: ActorRef<WorkerResult<undefined>> }
  | { readonly type: 'poll'; readonly maxRecords: number; readonly maxWaitMs: number; readonly replyTo: ActorRef<WorkerResult<SourceBatch>> }
  | { readonly type: 'ack'; readonly offset: SourceOffset; readonly replyTo: ActorRef<WorkerResult<undefined>> };

export type SinkWorkerMessage =
  | { readonly type: 'open'; readonly checkpoint: SinkPosition | undefined; readonly replyTo: ActorRef<WorkerResult<undefined>> }
  | { readonly type: 'write'; readonly batch: SinkBatch; readonly replyTo: ActorRef<WorkerResult<SinkWriteResult>> };

export type DeadLetterWorkerMessage =
  | { readonly type: 'open'; readonly replyTo: ActorRef<WorkerResult<undefined>> }
  | { readonly type: 'send'; readonly letters: readonly DeadLetter[]; readonly replyTo: ActorRef<WorkerResult<undefined>> };

async function answer<T>(replyTo: ActorRef<WorkerResult<T>>, work: () => Promise<T>): Promise<void> {
  try {
    replyTo.tell({ ok: true, value: await work() });
  } catch (error) {
    replyTo.tell({ ok: false, error });
  }
}

interface WorkerState {
  opened: boolean;
}

/** A child actor owning `source`. */
export function sourceWorker(source: Source, pipelineId: string, signal: AbortSignal): Behavior<SourceWorkerMessage, WorkerState> {
  return behavior<SourceWorkerMessage, WorkerState>({
    initialState: () => ({ opened: false }),
    onMessage: async (state, message) => {
      switch (message.type) {
        case 'open':
          await answer(message.replyTo, async () => {
            await source.open({ pipelineId, checkpoint: message.checkpoint, signal });
            state.opened = true;
            return undefined;
          });
          return state;
        case 'poll':
          await answer(message.replyTo, () => source.poll(message.maxRecords, message.maxWaitMs));
          return state;
        case 'ack':
          await answer(message.replyTo, async () => {
            await source.ack(message.offset);
            return undefined;
          });
          return state;
      }
    },
    onStop: async (state) => {
      if (state.opened) await source.close();
    },
  });
}

/** A child actor owning `sink`. */
export function sinkWorker(sink: Sink, pipelineId: string, signal: AbortSignal): Behavior<SinkWorkerMessage, WorkerState> {
  return behavior<SinkWorkerMessage, WorkerState>({
    initialState: () => ({ opened: false }),
    onMessage: async (state, message) => {
      switch (message.type) {
        case 'open':
          await answer(message.replyTo, async () => {
            await sink.open({ pipelineId, checkpoint: message.checkpoint, signal });
            state.opened = true;
            return undefined;
          });
          return state;
        case 'write':
          await answer(message.replyTo, () => sink.write(message.batch));
          return state;
      }
    },
    onStop: async (state) => {
      if (state.opened) await sink.close();
    },
  });
}

/** A child actor owning a dead-letter target. */
export function deadLetterWorker(target: DeadLetterTarget): Behavior<DeadLetterWorkerMessage, WorkerState> {
  return behavior<DeadLetterWorkerMessage, WorkerState>({
    initialState: () => ({ opened: false }),
    onMessage: async (state, message) => {
      switch (message.type) {
        case 'open':
          await answer(message.replyTo, async () => {
            await target.open();
            state.opened = true;
            return undefined;
          });
          return state;
        case 'send':
          await answer(message.replyTo, async () => {
            await target.send(message.letters);
            return undefined;
          });
          return state;
      }
    },
    onStop: async (state) => {
      if (state.opened) await target.close();
    },
  });
}
