/**
 * What the connector benchmarks share: medians, rounding, and measuring two
 * sides in alternating pairs (so drift of a busy machine hits both sides).
 */

export const round2 = (n: number): number => Math.round(n * 100) / 100;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Nearest-rank percentile (`p` in 0..100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/**
 * Runs `rounds` pairs of `measured` and `baseline`, alternating which goes
 * first, and returns the ms of each side per pair plus the per-pair ratios
 * `baselineMs / measuredMs` (1 = as fast as the baseline).
 */
export async function alternatingPairs(
  rounds: number,
  measured: (round: number) => Promise<number>,
  baseline: (round: number) => Promise<number>,
): Promise<{ measuredMs: number[]; baselineMs: number[]; ratios: number[] }> {
  const measuredMs: number[] = [];
  const baselineMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      measuredMs.push(await measured(round));
      baselineMs.push(await baseline(round));
    } else {
      baselineMs.push(await baseline(round));
      measuredMs.push(await measured(round));
    }
  }
  return { measuredMs, baselineMs, ratios: measuredMs.map((ms, i) => round2((baselineMs[i] ?? 0) / ms)) };
}
