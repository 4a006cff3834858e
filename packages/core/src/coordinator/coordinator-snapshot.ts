/**
 * How the coordinator's state is stored in snapshots. In memory the registry
 * is a pair of `Map`s keyed by id (an id such as `constructor` or `__proto__`
 * must not meet `Object.prototype`); serializers store JSON, which has no
 * maps, so a snapshot holds each map as an array of `[id, value]` entries,
 * readable in the store as it is:
 *
 * ```json
 * { "pipelines": [["orders", { "pipelineId": "orders", "status": "running", ... }]], "resources": [["node-1", { ... }]] }
 * ```
 *
 * Schema versions: 1 is the shape written before the maps (`pipelines` and
 * `resources` as objects keyed by id), still accepted when recovering; 2 is the
 * entries shape above.
 */
import type { EntityPersistence } from '../event-sourcing/recovery.js';
import { SerializationError } from '../persistence/persistence-errors.js';
import type { SnapshotStore, StoredSnapshot } from '../persistence/snapshot-store.js';
import type { CoordinatorState, RegisteredPipeline, ResourceUsage } from './coordinator-model.js';

/** The schema version coordinator snapshots are written with. */
export const COORDINATOR_STATE_SCHEMA_VERSION = 2;

/** A coordinator snapshot as stored (schema version 2). */
export interface StoredCoordinatorState {
  readonly pipelines: readonly (readonly [string, RegisteredPipeline])[];
  readonly resources: readonly (readonly [string, ResourceUsage])[];
}

const MANIFEST = 'coordinator snapshot';

/**
 * The stored form of `state`: each map as an array of entries.
 *
 * @example
 * ```ts
 * toStoredCoordinatorState(emptyCoordinatorState); // { pipelines: [], resources: [] }
 * ```
 */
export function toStoredCoordinatorState(state: CoordinatorState): StoredCoordinatorState {
  return { pipelines: [...state.pipelines.entries()], resources: [...state.resources.entries()] };
}

/**
 * The state a stored snapshot holds, in either shape: entries (version 2) or
 * objects keyed by id (version 1, written before the maps).
 *
 * @throws SerializationError when `stored` has neither shape.
 * @example
 * ```ts
 * fromStoredCoordinatorState({ pipelines: [['a', pipelineA]], resources: [] }, 2).pipelines.get('a'); // pipelineA
 * fromStoredCoordinatorState({ pipelines: { a: pipelineA }, resources: {} }, 1).pipelines.get('a'); // pipelineA
 * ```
 */
export function fromStoredCoordinatorState(stored: unknown, schemaVersion: number): CoordinatorState {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    throw new SerializationError(MANIFEST, `expected an object, found ${describe(stored)}`);
  }
  const { pipelines, resources } = stored as { pipelines?: unknown; resources?: unknown };
  const read = schemaVersion === 1 ? fromKeyedObject : fromEntries;
  return {
    pipelines: read<RegisteredPipeline>(pipelines, 'pipelines'),
    resources: read<ResourceUsage>(resources, 'resources'),
  };
}

function fromEntries<V>(value: unknown, field: string): ReadonlyMap<string, V> {
  if (!Array.isArray(value)) throw new SerializationError(MANIFEST, `${field} must be an array of [id, value] entries, found ${describe(value)}`);
  const map = new Map<string, V>();
  for (const [index, entry] of value.entries()) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !isRecord(entry[1])) {
      throw new SerializationError(MANIFEST, `${field}[${index}] is not an [id, value] entry`);
    }
    map.set(entry[0], entry[1] as V);
  }
  return map;
}

function fromKeyedObject<V>(value: unknown, field: string): ReadonlyMap<string, V> {
  if (value === undefined) return new Map();
  if (!isRecord(value)) throw new SerializationError(MANIFEST, `${field} (schema version 1) must be an object keyed by id, found ${describe(value)}`);
  const map = new Map<string, V>();
  // Object.entries reads own keys only, including an own `__proto__` the deserializer kept.
  for (const [id, item] of Object.entries(value)) {
    if (!isRecord(item)) throw new SerializationError(MANIFEST, `${field}[${JSON.stringify(id)}] (schema version 1) is not an object`);
    map.set(id, item as V);
  }
  return map;
}

/**
 * `persistence` with a snapshot store that writes coordinator states as
 * entries and reads them back as maps (version-1 snapshots pass through to the
 * behavior's upcaster). `spawnCoordinator` uses it; pass it yourself when you
 * spawn `coordinatorBehavior` with `spawnEventSourced`.
 *
 * @example
 * ```ts
 * spawnEventSourced(system, coordinatorBehavior({ now }), COORDINATOR_PERSISTENCE_ID, { persistence: coordinatorPersistence(persistence) });
 * ```
 */
export function coordinatorPersistence(persistence: EntityPersistence): EntityPersistence {
  const inner = persistence.snapshots;
  const snapshots: SnapshotStore = {
    save: (metadata, state, schemaVersion) =>
      isCoordinatorState(state) ? inner.save(metadata, toStoredCoordinatorState(state), COORDINATOR_STATE_SCHEMA_VERSION) : inner.save(metadata, state, schemaVersion),
    loadLatest: async (persistenceId, criteria) => {
      const snapshot = await inner.loadLatest(persistenceId, criteria);
      if (snapshot === undefined || snapshot.schemaVersion !== COORDINATOR_STATE_SCHEMA_VERSION) return snapshot;
      const decoded: StoredSnapshot = { ...snapshot, state: fromStoredCoordinatorState(snapshot.state, snapshot.schemaVersion) };
      return decoded;
    },
    delete: (persistenceId, criteria) => inner.delete(persistenceId, criteria),
    close: () => inner.close(),
  };
  return { ...persistence, snapshots };
}

function isCoordinatorState(value: unknown): value is CoordinatorState {
  return isRecord(value) && value.pipelines instanceof Map && value.resources instanceof Map;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}
