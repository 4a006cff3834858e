/**
 * `@dataflow/connectors`.
 */
export {};
