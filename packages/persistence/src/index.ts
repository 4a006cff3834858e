/**
 * `@dataflow/persistence`.
 */
export {};
