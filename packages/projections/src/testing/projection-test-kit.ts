/**
 * `@dataflow/projections/testing`: runs a projection's handler over given
 * events against an embedded PGlite database (migrated like production), so
 * a read model is tested as "given these events, then these rows". Delivery
 * can be made hostile: every event twice (what `atLeastOnce` does after a
 * crash) and the persistence ids interleaved in a shuffled order (what a tag
 * query does across writers; each id's own events stay in order, as the
 * journal guarantees), to prove a handler idempotent and order-independent
 * across ids.
 */
import { PGlite } from '@electric-sql/pglite';
import type { EventEnvelope, Offset } from '@dataflow/core';
import { pgliteExecutor, type SqlExecutor } from '@dataflow/persistence';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import type { EventHandler, GroupHandler, Projection } from '../runner/projection.js';
import { migrateProjections } from '../schema/projections-schema.js';

/** How the kit delivers the events. */
export interface DeliveryOptions {
  /** Deliver every event twice (the second copy right after the first, or later with `shuffle`). Default false. */
  readonly duplicates?: boolean;
  /** Interleave the persistence ids in a seeded random order, each id's events still in sequence order. Default false. */
  readonly shuffle?: boolean;
  readonly seed?: number;
  /** Events per group for `groupedWithin` projections (default: the projection's size). */
  readonly groupSize?: number;
}

let counter = 0;

/**
 * Builds an envelope as a tag query delivers it (offset: a global sequence).
 *
 * @example
 * ```ts
 * const e = testEnvelope('pipeline-p1', 1, { type: 'PipelineCreated', at: 0, pipelineId: 'p1', definition });
 * ```
 */
export function testEnvelope(persistenceId: string, sequenceNr: number, payload: unknown, options: { readonly timestamp?: number; readonly tags?: readonly string[]; readonly offset?: Offset } = {}): EventEnvelope {
  counter++;
  const type = (payload as { type?: unknown } | null)?.type;
  const at = (payload as { at?: unknown } | null)?.at;
  return {
    persistenceId,
    sequenceNr,
    payload,
    eventType: typeof type === 'string' ? type : 'event',
    schemaVersion: 1,
    tags: options.tags ?? [],
    timestamp: options.timestamp ?? (typeof at === 'number' ? at : Date.now()),
    writerId: 'test-kit',
    offset: options.offset ?? { kind: 'sequence', value: counter },
  };
}

function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The delivery order: per id in sequence order, ids interleaved at random when asked; duplicates when asked. */
export function deliveryOrder(events: readonly EventEnvelope[], options: DeliveryOptions = {}): EventEnvelope[] {
  const copies = options.duplicates === true ? events.flatMap((e) => [e, e]) : [...events];
  if (options.shuffle !== true) return copies;
  const random = seeded(options.seed ?? 1);
  const queues = new Map<string, EventEnvelope[]>();
  for (const e of copies) {
    const queue = queues.get(e.persistenceId) ?? [];
    queue.push(e);
    queues.set(e.persistenceId, queue);
  }
  const out: EventEnvelope[] = [];
  const ids = [...queues.keys()];
  while (ids.length > 0) {
    const i = Math.floor(random() * ids.length);
    const id = ids[i] as string;
    const queue = queues.get(id) as EventEnvelope[];
    out.push(queue.shift() as EventEnvelope);
    if (queue.length === 0) ids.splice(i, 1);
  }
  return out;
}

/** A PGlite database with the projection tables, and a way to run projections over given events. */
export class ProjectionTestKit {
  private constructor(
    readonly executor: SqlExecutor,
    readonly schema: string,
    readonly store: ProjectionOffsetStore,
  ) {}

  /**
   * An in-memory database migrated for projections in `schema` (default `dataflow`).
   *
   * @example
   * ```ts
   * const kit = await ProjectionTestKit.create();
   * await kit.run(pipelineStatusProjection({ schema: kit.schema }), events, { duplicates: true, shuffle: true });
   * const rows = await kit.query('SELECT * FROM dataflow.pipeline_status');
   * ```
   */
  static async create(options: { readonly schema?: string } = {}): Promise<ProjectionTestKit> {
    const executor = pgliteExecutor(await PGlite.create());
    const schema = options.schema ?? 'dataflow';
    await migrateProjections(executor, schema);
    return new ProjectionTestKit(executor, schema, new ProjectionOffsetStore(executor, schema));
  }

  /** Delivers `events` to the projection's handler the way the runner does for its guarantee, with the offsets saved alongside. */
  async run(projection: Projection, events: readonly EventEnvelope[], options: DeliveryOptions = {}): Promise<void> {
    const ordered = deliveryOrder(events, options);
    const { id, guarantee } = projection;
    if (guarantee.kind === 'grouped-within') {
      const size = options.groupSize ?? guarantee.size;
      for (let i = 0; i < ordered.length; i += size) {
        const group = ordered.slice(i, i + size);
        const last = group.at(-1) as EventEnvelope;
        await this.executor.transaction(async (tx) => {
          await (projection.handler as GroupHandler)(group, tx);
          await this.store.save(id, last.offset, group.length, last.timestamp, tx);
        });
      }
      return;
    }
    for (const envelope of ordered) {
      if (guarantee.kind === 'exactly-once') {
        await this.executor.transaction(async (tx) => {
          await (projection.handler as EventHandler)(envelope, tx);
          await this.store.save(id, envelope.offset, 1, envelope.timestamp, tx);
        });
      } else {
        await (projection.handler as EventHandler)(envelope, this.executor);
        await this.store.save(id, envelope.offset, 1, envelope.timestamp);
      }
    }
  }

  /** Rows of a query, for assertions. */
  query<Row extends object = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<Row[]> {
    return this.executor.query<Row>(sql, params);
  }

  close(): Promise<void> {
    return this.executor.close();
  }
}
