/**
 * `@dataflow/core/testing`: test kits for actors and event-sourced behaviors.
 */
export {};
