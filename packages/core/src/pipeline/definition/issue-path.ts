/**
 * Formats the location of a field-level issue (`transforms[1].expression`) the
 * way definition and record checks report it.
 */

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * `['transforms', 1, 'expression']` → `transforms[1].expression`; keys that are
 * not identifiers are quoted (`headers["content-type"]`); `[]` → `''`, the
 * whole value.
 *
 * @example
 * ```ts
 * formatIssuePath(['source', 'options', 'my key', 0]); // 'source.options["my key"][0]'
 * ```
 */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && IDENTIFIER.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}
