/**
 * The registry through which connectors tell pipeline validation which source,
 * sink and dead-letter types exist and what options each accepts. Core knows
 * no connector: @dataflow/connectors builds a registry from its own schemas.
 */

/** The role a connector plays in a pipeline. */
export type ConnectorKind = 'source' | 'sink' | 'dead-letter';

/** One problem an options schema reports. */
export interface ConnectorSchemaIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
}

/** What an options schema returns: the accepted value, or its issues. */
export type ConnectorSchemaResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | { readonly issues: readonly ConnectorSchemaIssue[] };

/**
 * The options schema of one connector type, in the shape of Standard Schema
 * (https://standardschema.dev), so a zod 4 schema fits as is. It receives the
 * stage object as written, `type` included and `onError` removed. Validation is
 * synchronous: a schema that returns a promise is reported as an issue.
 */
export interface ConnectorOptionsSchema {
  readonly '~standard': {
    readonly validate: (value: unknown) => ConnectorSchemaResult | Promise<ConnectorSchemaResult>;
  };
}

/**
 * The connector types known to a deployment and their option schemas.
 *
 * @example
 * ```ts
 * const registry: ConnectorRegistry = connectorRegistry({ sources: { kafka: kafkaSourceSchema } });
 * registry.types('source');                 // ['kafka']
 * registry.optionsSchema('source', 'kafka'); // kafkaSourceSchema
 * ```
 */
export interface ConnectorRegistry {
  /** The registered types of `kind`, sorted. */
  types(kind: ConnectorKind): readonly string[];
  /** The options schema of `type`, or undefined when the type is not registered. */
  optionsSchema(kind: ConnectorKind, type: string): ConnectorOptionsSchema | undefined;
  /** What the source type declares it can do beyond the port (undefined: nothing more). */
  sourceCapabilities?(type: string): SourceCapabilities | undefined;
  /** What the sink type declares beyond the port (undefined: nothing more). */
  sinkCapabilities?(type: string): SinkCapabilities | undefined;
}

/**
 * What a source type declares beyond the source port. Core knows no
 * connector: validation asks the registry, e.g. whether `parallelism > 1` is
 * possible (ADR 0013).
 */
export interface SourceCapabilities {
  /**
   * The source can run as several tasks of one pipeline that split its input
   * among themselves (a Kafka consumer group): each task is opened with
   * `SourceContext.task` and must read a share disjoint from the others'.
   * Given a function, it is asked with the source's options (as written) and
   * answers true, or why not.
   */
  readonly parallelTasks?: boolean | ((options: Readonly<Record<string, unknown>>) => true | string);
  /**
   * The source's offsets can be committed by a sink in the sink's own
   * transaction (`Sink.commitsSourceOffsets`: a Kafka consumer group's
   * offsets in a Kafka producer's transaction).
   */
  readonly offsetsCommittedBySink?: boolean;
}

/** What a sink type declares beyond the sink port. */
export interface SinkCapabilities {
  /**
   * Whether the sink, with these options (as written), commits the source's
   * offsets in its own transaction (`Sink.commitsSourceOffsets`): the name
   * of the option that asks for it (e.g. `exactlyOnce`), else undefined.
   * Validation refuses such a sink under a source that does not declare
   * `offsetsCommittedBySink`, at that option.
   */
  readonly commitsSourceOffsets?: (options: Readonly<Record<string, unknown>>) => string | undefined;
}

/** Option schemas by connector type, per kind. */
export interface ConnectorSchemas {
  readonly sources?: Readonly<Record<string, ConnectorOptionsSchema>>;
  readonly sinks?: Readonly<Record<string, ConnectorOptionsSchema>>;
  readonly deadLetters?: Readonly<Record<string, ConnectorOptionsSchema>>;
  /** Capabilities of source types (default: none). */
  readonly sourceCapabilities?: Readonly<Record<string, SourceCapabilities>>;
  /** Capabilities of sink types (default: none). */
  readonly sinkCapabilities?: Readonly<Record<string, SinkCapabilities>>;
}

/**
 * Builds an immutable registry from option schemas.
 *
 * @example
 * ```ts
 * const registry = connectorRegistry({
 *   sources: { generator: generatorSourceDefinitionSchema },
 *   sinks: { console: consoleSinkDefinitionSchema },
 *   sourceCapabilities: { kafka: { parallelTasks: true } },
 * });
 * validatePipelineDefinition(input, { connectors: registry });
 * ```
 */
export function connectorRegistry(schemas: ConnectorSchemas): ConnectorRegistry {
  const byKind: Record<ConnectorKind, ReadonlyMap<string, ConnectorOptionsSchema>> = {
    source: new Map(Object.entries(schemas.sources ?? {})),
    sink: new Map(Object.entries(schemas.sinks ?? {})),
    'dead-letter': new Map(Object.entries(schemas.deadLetters ?? {})),
  };
  const capabilities = new Map(Object.entries(schemas.sourceCapabilities ?? {}));
  const sinkCapabilities = new Map(Object.entries(schemas.sinkCapabilities ?? {}));
  return {
    types: (kind) => [...byKind[kind].keys()].sort(),
    optionsSchema: (kind, type) => byKind[kind].get(type),
    sourceCapabilities: (type) => capabilities.get(type),
    sinkCapabilities: (type) => sinkCapabilities.get(type),
  };
}
