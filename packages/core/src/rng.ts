/**
 * A small seeded uniform generator shared by the packages that need reproducible draws without
 * saving generator state (parameter init, token sampling): mulberry32 — one 32-bit state word,
 * integer arithmetic only, so a seed gives the same stream on every platform.
 * (The trainer's TrainRng and the data package's Rng keep their own generators: their state is
 * checkpointed, and the degradations are pinned against an independent implementation.)
 */
export class Mulberry32 {
  private state: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /** n values uniform in [low, high). */
  uniform(n: number, low: number, high: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.next();
    return out;
  }
}
