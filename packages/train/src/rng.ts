/**
 * The trainer's own seeded generator, with a state that can be saved in a
 * checkpoint and restored exactly (a resumed run draws the same numbers).
 *
 * Algorithm: sfc32 (Chris Doty-Humphrey's "small fast counting" generator),
 * four 32-bit words of state; the seed is spread over the words with a
 * multiply-xorshift hash and the generator is warmed up for 16 draws.
 * Only 32-bit integer arithmetic, so the stream is the same on every platform.
 */

/** The saved form of a TrainRng: four uint32 words (a, b, c, counter). */
export type RngState = [number, number, number, number];

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export class TrainRng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`TrainRng: seed must be an integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    this.a = mix32(lo ^ 0x9e3779b9);
    this.b = mix32(hi ^ 0x243f6a88);
    this.c = mix32(lo + 0x85a308d3);
    this.d = 1;
    for (let i = 0; i < 16; i++) this.nextUint32();
  }

  /** Next uint32. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n) without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 4294967296) throw new RangeError(`TrainRng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Standard normal by Box–Muller (one value per two uniforms; nothing cached, so the state is just the four words). */
  normal(): number {
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A new seed drawn from this stream (for libraries that take a seed, e.g. tf.randomNormal). */
  seed(): number {
    return this.nextUint32();
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
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
