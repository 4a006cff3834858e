/**
 * `@dataflow/projections`.
 */
export {};
