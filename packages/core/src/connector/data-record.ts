/**
 * The unit that flows through a pipeline: a plain JSON object.
 */

/** A JSON value. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A record: a JSON object with string keys. */
export type DataRecord = { readonly [key: string]: JsonValue };
