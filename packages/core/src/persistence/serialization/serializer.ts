/**
 * The serializer port: how event payloads and snapshot states become bytes in
 * a durable store, and back. A serializer is chosen per event type by the
 * `SerializerRegistry`; the manifest tells it which schema version it reads.
 */

/**
 * What a stored payload is: its type name and schema version. Serializers may
 * use it to pick a codec; readers use the version to upcast.
 */
export interface Manifest {
  /** The event type name (e.g. `PipelineCreated`) or the snapshot's state type. */
  readonly eventType: string;
  readonly schemaVersion: number;
}

/**
 * Turns payloads into bytes and back.
 *
 * @example
 * ```ts
 * const utf8: Serializer = {
 *   id: 'utf8-string',
 *   serialize: (payload) => new TextEncoder().encode(String(payload)),
 *   deserialize: (bytes) => new TextDecoder().decode(bytes),
 * };
 * ```
 */
export interface Serializer {
  /** Stable identifier stored with every payload; never reuse one for a different format. */
  readonly id: string;
  /** Encodes `payload`; throws `SerializationError` when it cannot. */
  serialize(payload: unknown, manifest: Manifest): Uint8Array;
  /** Decodes bytes written by `serialize`; throws `SerializationError` when it cannot. */
  deserialize(bytes: Uint8Array, manifest: Manifest): unknown;
}

/** Renders a manifest as `eventType@v<schemaVersion>` for messages and logs. */
export function formatManifest(manifest: Manifest): string {
  return `${manifest.eventType}@v${manifest.schemaVersion}`;
}

/** The `eventType` of the manifest under which snapshot states are serialized. */
export const SNAPSHOT_EVENT_TYPE = 'snapshot';
