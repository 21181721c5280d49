/**
 * The project's seeded generators with saveable or pinned streams, in one place.
 *
 * - `Rng`: xoshiro128** (32-bit state words) seeded through splitmix32; the degradations and
 *   datasets draw from it (stream pinned against an independent Python implementation).
 * - `TrainRng`: sfc32; the trainer's generator, whose four-word state is saved in checkpoints
 *   (`getState`/`setState`) so that a resumed run draws the same numbers.
 *
 * Both extend `Uint32Generator`, which holds everything but the 32-bit step: uniform, range,
 * unbiased integers, Fisher–Yates and Box–Muller (`normalPair`, also used with other uniform
 * streams, e.g. core's Mulberry32). The two steps and seedings are kept as they
 * were (not merged into one algorithm) because pinned degradation outputs and checkpointed
 * states must keep reproducing the same streams.
 *
 * Everything here is integer arithmetic on 32-bit words (Math.imul, >>>), so a seed gives the
 * same stream on every platform and every Node version.
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

/**
 * A generator of uint32 words and what is derived from them. Subclasses supply `nextUint32`;
 * `label` prefixes error messages.
 */
export abstract class Uint32Generator {
  protected abstract readonly label: string;

  /** Next uint32. */
  abstract nextUint32(): number;

  /** Standard normal N(0, 1). */
  abstract normal(): number;

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
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`${this.label}.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
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

  /** Box–Muller from two uniforms of this stream (see `normalPair`). */
  protected normalPair(): [number, number] {
    return normalPair(() => this.uniform());
  }
}

/**
 * Box–Muller, the one copy: two uniforms in [0, 1) drawn from `uniform` (u1 first, then u2) →
 * the pair [r·cos θ, r·sin θ] of independent N(0, 1) values, r = √(−2 ln(1 − u1)), θ = 2π·u2.
 * Every seeded normal of the project comes from here (the degradations' Rng, the trainer's
 * TrainRng, the MAE's initial weights, the bench's random checkpoints), so pinned streams stay
 * bit-identical as long as this stays as it is.
 */
export function normalPair(uniform: () => number): [number, number] {
  const u1 = 1 - uniform(); // (0, 1]: log is finite
  const u2 = uniform();
  const r = Math.sqrt(-2 * Math.log(u1));
  return [r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2)];
}

/** xoshiro128** seeded through splitmix32: the degradations' and datasets' generator. */
export class Rng extends Uint32Generator {
  protected readonly label = "Rng";
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    super();
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

  /** Standard normal by Box–Muller; the second value of each pair is kept for the next call. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const [z, spare] = this.normalPair();
    this.spare = spare;
    return z;
  }
}

/** The saved form of a TrainRng: four uint32 words (a, b, c, counter). Checkpoints store it as a JSON array. */
export type RngState = [number, number, number, number];

/** sfc32's seed hash: a multiply-xorshift of one word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The trainer's generator, with a state that can be saved in a checkpoint and restored
 * exactly. Algorithm: sfc32 (Chris Doty-Humphrey's "small fast counting" generator), four
 * 32-bit words; the seed's low and high words are spread over the state with `mix32` and the
 * generator is warmed up for 16 draws.
 */
export class TrainRng extends Uint32Generator {
  protected readonly label = "TrainRng";
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number) {
    super();
    if (!Number.isInteger(seed)) throw new RangeError(`TrainRng: seed must be an integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    this.a = mix32(lo ^ 0x9e3779b9);
    this.b = mix32(hi ^ 0x243f6a88);
    this.c = mix32(lo + 0x85a308d3);
    this.d = 1;
    for (let i = 0; i < 16; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Standard normal by Box–Muller (one value per two uniforms; nothing cached, so the state is just the four words). */
  normal(): number {
    return this.normalPair()[0];
  }

  /** A new seed drawn from this stream (for libraries that take a seed, e.g. tf.randomNormal). */
  seed(): number {
    return this.nextUint32();
  }

  getState(): RngState {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  setState(state: readonly number[]): void {
    if (!Array.isArray(state) || state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < 4294967296)) {
      throw new RangeError(`TrainRng.setState: expected 4 uint32 words, got ${JSON.stringify(state)}`);
    }
    [this.a, this.b, this.c, this.d] = state.map((w) => w | 0);
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
