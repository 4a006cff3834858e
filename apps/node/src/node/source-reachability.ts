/**
 * Whether each running pipeline's source answers, as its lag samples tell
 * (a Kafka source asks its brokers for the group's offsets every
 * `lagIntervalMs`). A broker that is down does not fail the pipeline: its
 * client reconnects by itself and the pipeline reads on when it answers,
 * nothing lost. Without this, such an outage looks like a quiet topic: the
 * pipeline says `running`, `/ready` says ok. With it, the first failed
 * sample is a warning naming the cause, the pipeline's status and `/ready`
 * name the source as unreachable since then, and the first answer after it
 * is logged with how long the source was away.
 */
import type { Instrumentation, InstrumentationEvent } from '@dataflow/core';
import type { NodeLogger } from './node-logger.js';
import { describeError } from './node-supervisor.js';

/** A source that did not answer its last lag sample. */
export interface SourceProblem {
  readonly pipelineId: string;
  readonly sourceType: string;
  /** When its first failed sample came (epoch ms). */
  readonly since: number;
  /** The last failure, with its causes. */
  readonly cause: string;
  /** Failed samples in a row. */
  readonly failures: number;
}

/**
 * Follows the lag samples of `events` until the returned `close` is called.
 *
 * @example
 * ```ts
 * const sources = new SourceReachability(node.events, () => Date.now(), logger);
 * sources.of('orders'); // undefined while the source answers
 * ```
 */
export class SourceReachability {
  readonly #problems = new Map<string, SourceProblem>();
  readonly #unsubscribe: (() => void)[];

  constructor(
    events: Instrumentation<InstrumentationEvent>,
    private readonly now: () => number,
    private readonly logger: NodeLogger,
  ) {
    this.#unsubscribe = [
      events.on('pipeline.source.lag-failed', (e) => this.#failed(e.pipelineId, e.sourceType, e.error)),
      events.on('pipeline.source.lag', (e) => this.#answered(e.pipelineId, e.sourceType)),
      // A pipeline that no longer runs has no source to reach (a paused one keeps its connection, and its problem).
      events.on('pipeline.status.changed', (e) => {
        if (e.to !== 'running' && e.to !== 'paused') this.#problems.delete(e.pipelineId);
      }),
    ];
  }

  /** The problem of `pipelineId`'s source, undefined while it answers (or is not sampled). */
  of(pipelineId: string): SourceProblem | undefined {
    return this.#problems.get(pipelineId);
  }

  /** Every source that does not answer now, oldest problem first. */
  problems(): readonly SourceProblem[] {
    return [...this.#problems.values()].sort((a, b) => a.since - b.since);
  }

  close(): void {
    for (const off of this.#unsubscribe) off();
    this.#problems.clear();
  }

  #failed(pipelineId: string, sourceType: string, error: unknown): void {
    const cause = describeError(error);
    const before = this.#problems.get(pipelineId);
    if (before === undefined) {
      this.#problems.set(pipelineId, { pipelineId, sourceType, since: this.now(), cause, failures: 1 });
      this.logger.warn(`pipeline ${pipelineId}: its ${sourceType} source does not answer (${cause}); the pipeline waits for it and reads on when it does`, {
        pipeline_id: pipelineId,
        source_type: sourceType,
      });
      return;
    }
    this.#problems.set(pipelineId, { ...before, cause, failures: before.failures + 1 });
    this.logger.debug(`pipeline ${pipelineId}: its ${sourceType} source still does not answer (${before.failures + 1} samples in a row): ${cause}`, { pipeline_id: pipelineId });
  }

  #answered(pipelineId: string, sourceType: string): void {
    const before = this.#problems.get(pipelineId);
    if (before === undefined) return;
    this.#problems.delete(pipelineId);
    const seconds = Math.round((this.now() - before.since) / 100) / 10;
    this.logger.info(`pipeline ${pipelineId}: its ${sourceType} source answers again (it did not for ${seconds} s)`, { pipeline_id: pipelineId, source_type: sourceType });
  }
}
