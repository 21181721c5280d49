/**
 * A small seeded random number generator: xoshiro128** (32-bit state words),
 * seeded through splitmix32, with a Box–Muller normal sampler.
 *
 * Everything here is integer arithmetic on 32-bit words (Math.imul, >>>), so a
 * seed gives the same stream on every platform and every Node version.
 */

/** One splitmix32 step: returns the advanced state and a well-mixed output word. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Checks that a seed is a finite integer and folds it to 32 bits. */
export function seedToUint32(seed: number, label = "seed"): number {
  if (!Number.isFinite(seed) || !Number.isInteger(seed)) throw new RangeError(`${label} must be an integer, got ${seed}`);
  if (seed >= -(2 ** 31) && seed < 2 ** 32) return seed >>> 0;
  // Fold values beyond 32 bits (e.g. Date.now()) instead of silently dropping the high part.
  const hi = Math.floor(seed / 2 ** 32);
  return ((seed >>> 0) ^ Math.imul(hi | 0, 0x9e3779b1)) >>> 0;
}

/**
 * Mixes integers into one 32-bit seed; used for per-item seeds such as
 * `deriveSeed(seed, index, epoch)`. Order matters: (1, 2) ≠ (2, 1).
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (let i = 0; i < parts.length; i++) {
    const p = seedToUint32(parts[i], `deriveSeed part ${i}`);
    h = Math.imul(h ^ p, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
    h ^= h >>> 13;
  }
  return splitmix32(h)[1];
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let st = seedToUint32(seed);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(st);
      st = next;
      words.push(out);
    }
    [this.s0, this.s1, this.s2, this.s3] = words;
    // All-zero state is the one forbidden state of xoshiro; splitmix32 never gives four zeros, but be explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [0, n), without modulo bias (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Standard normal N(0, 1) by Box–Muller; the second value of each pair is kept for the next call. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}

/** A generator from a seed, or the generator itself when one is passed (so callers can share a stream). */
export function toRng(rngOrSeed: Rng | number): Rng {
  return rngOrSeed instanceof Rng ? rngOrSeed : new Rng(rngOrSeed);
}

/**
 * Deterministic shuffled order of `0..n-1` for one epoch: the same (n, seed, epoch)
 * gives the same permutation; different epochs give different ones.
 */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`epochOrder: n must be a non-negative integer, got ${n}`);
  const order = Array.from({ length: n }, (_, i) => i);
  // The constant separates this stream from the per-item degradation seeds derived from (seed, index, epoch).
  return new Rng(deriveSeed(seed, epoch, 0x6f726472)).shuffle(order);
}
