/**
 * Groups of a stream for `groupedWithin` projections: up to `size` items,
 * or fewer when `withinMs` passed since the group's first item (a live query
 * that goes quiet still hands over what it has).
 */
/**
 * Groups `source` into arrays of at most `size`, each handed over once full
 * or `withinMs` after its first item; a finished source flushes its last
 * group. Stops after the group in hand when `signal` aborts.
 */
export async function* groupedWithinMs<T>(source: AsyncIterable<T>, size: number, withinMs: number, signal: AbortSignal): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  let group: T[] = [];
  let deadline = 0;
  try {
    for (;;) {
      pending ??= iterator.next();
      let result: IteratorResult<T> | 'timeout';
      if (group.length === 0) result = await pending;
      else {
        const wait = Math.max(0, deadline - Date.now());
        let timer: NodeJS.Timeout | undefined;
        result = await Promise.race([pending, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), wait)))]);
        clearTimeout(timer);
      }
      if (result === 'timeout') {
        yield group;
        group = [];
        continue;
      }
      pending = undefined;
      if (result.done === true) {
        if (group.length > 0) yield group;
        return;
      }
      if (group.length === 0) deadline = Date.now() + withinMs;
      group.push(result.value);
      if (group.length >= size) {
        yield group;
        group = [];
      }
      if (signal.aborted) return;
    }
  } finally {
    // A next() still pending (a live query waiting for events) ends when the runner aborts the query.
    if (pending === undefined) await iterator.return?.();
    else void pending.then(() => iterator.return?.(), () => undefined);
  }
}
