import { describe, expect, it } from "vitest";
import { Mulberry32 } from "./rng.js";

/** An independent mulberry32 written with BigInt arithmetic (no Math.imul), for comparison. */
function reference(seed: number, n: number): number[] {
  const M = 0xffffffffn;
  let state = BigInt(seed >>> 0);
  const imul = (a: bigint, b: bigint) => (a * b) & M;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    state = (state + 0x6d2b79f5n) & M;
    let z = state;
    z = imul(z ^ (z >> 15n), z | 1n);
    z = (z ^ ((z + imul(z ^ (z >> 7n), z | 61n)) & M)) & M;
    out.push(Number((z ^ (z >> 14n)) & M) / 4294967296);
  }
  return out;
}

describe("Mulberry32", () => {
  it("matches an independent BigInt implementation", () => {
    for (const seed of [0, 1, 42, 2 ** 31 + 5]) {
      const r = new Mulberry32(seed);
      expect(Array.from({ length: 50 }, () => r.next())).toEqual(reference(seed, 50));
    }
  });
  it("draws uniform ranges and rejects non-integer seeds", () => {
    const u = new Mulberry32(3).uniform(1000, -2, 2);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(2);
    expect(Math.abs(u.reduce((a, b) => a + b, 0) / 1000)).toBeLessThan(0.2);
    expect(() => new Mulberry32(1.5)).toThrow(/seed must be an integer/);
  });
});
