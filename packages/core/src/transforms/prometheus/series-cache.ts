/**
 * The per-target series cache of the exposition parser.
 */

/** A parsed series: its exact text, name and frozen label set. */
export interface CachedSeries {
  readonly key: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * The series of one scrape target from its previous scrape, by position: a
 * target exposes the same series in the same order scrape after scrape (the
 * idea of Prometheus' scrape cache), so the parser compares the line with the
 * series text at the same position and, when it matches up to a space,
 * reuses the parsed name and (frozen) label set, parsing only the value. A
 * comparison, not a hash lookup, so a hit costs about a `memcmp`. A series
 * added or removed shifts later positions: those lines miss once and are
 * parsed and remembered again. Bounded to `maxEntries` series per target.
 * Use one cache per target and per parser configuration (`maxLabels`), since
 * a hit skips the checks the first parse made.
 *
 * @example
 * ```ts
 * const cache = new SeriesCache();
 * const result = parseExposition(body, { job: 'node', instance, scrapeTimestampMs: Date.now(), seriesCache: cache });
 * ```
 */
export class SeriesCache {
  readonly #entries: (CachedSeries | undefined)[] = [];
  constructor(readonly maxEntries = 50_000) {}

  /** Series remembered. */
  get size(): number {
    return this.#entries.reduce((n, e) => (e === undefined ? n : n + 1), 0);
  }

  /** The series seen at `position` (0-based among sample lines) last time. @internal */
  at(position: number): CachedSeries | undefined {
    return this.#entries[position];
  }

  /** @internal */
  remember(position: number, series: CachedSeries): void {
    if (position < this.maxEntries) this.#entries[position] = series;
  }
}
