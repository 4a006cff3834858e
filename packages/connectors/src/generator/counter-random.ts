/**
 * A counter-based pseudo-random generator: the value for (seed, stream,
 * index, draw) is a pure hash of those numbers, with no state carried from one
 * record to the next. That is what lets the generator source resume at any
 * offset and reproduce exactly the record it would have produced there.
 */

const TWO_POW_32 = 0x1_0000_0000;

/** murmur3's 32-bit finalizer: a good avalanche for a few integer operations. */
function fmix32(input: number): number {
  let h = input >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function combine(h: number, value: number): number {
  return fmix32(Math.imul(h ^ value, 0x9e3779b1) + 0x7f4a7c15);
}

/**
 * FNV-1a hash of a string, used to give each generated field its own stream
 * (keyed by name, so adding a field does not change the values of the others).
 */
export function streamOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Deterministic random numbers for one seed.
 *
 * @example
 * ```ts
 * const random = new CounterRandom(42);
 * random.uint32(streamOf('temperature'), 7) === new CounterRandom(42).uint32(streamOf('temperature'), 7); // true
 * ```
 */
export class CounterRandom {
  constructor(private readonly seed: number) {}

  /** A 32-bit unsigned integer for record `index` (a safe integer ≥ 0); `draw` tells apart several numbers of one value. */
  uint32(stream: number, index: number, draw = 0): number {
    const low = index % TWO_POW_32;
    const high = Math.floor(index / TWO_POW_32);
    let h = combine(this.seed >>> 0, stream);
    h = combine(h, low);
    h = combine(h, high);
    return combine(h, draw);
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  unit(stream: number, index: number, draw = 0): number {
    const a = this.uint32(stream, index, 2 * draw) >>> 5;
    const b = this.uint32(stream, index, 2 * draw + 1) >>> 6;
    return (a * 67_108_864 + b) / 9_007_199_254_740_992;
  }
}
