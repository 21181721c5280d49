import { describe, expect, it } from "vitest";
import { Rng, deriveSeed, epochOrder, seedToUint32, toRng } from "./rng.js";

describe("Rng", () => {
  it("matches an independent xoshiro128** + splitmix32 implementation (pinned stream)", () => {
    // Values from a separate Python implementation of the same algorithms.
    const a = new Rng(0);
    expect([a.nextUint32(), a.nextUint32(), a.nextUint32(), a.nextUint32()]).toEqual([3809008728, 1133695204, 53579671, 2891528803]);
    const b = new Rng(42);
    expect([b.nextUint32(), b.nextUint32(), b.nextUint32(), b.nextUint32()]).toEqual([2837322924, 544945897, 479756282, 3500138142]);
  });

  it("is deterministic per seed and differs across seeds", () => {
    const draw = (s: number) => {
      const r = new Rng(s);
      return Array.from({ length: 16 }, () => r.uniform());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it("uniform, int and normal have the right moments", () => {
    const r = new Rng(123);
    const n = 200_000;
    let su = 0, sn = 0, sn2 = 0, umin = 1, umax = 0;
    const counts = new Array(7).fill(0);
    for (let i = 0; i < n; i++) {
      const u = r.uniform();
      umin = Math.min(umin, u);
      umax = Math.max(umax, u);
      su += u;
      counts[r.int(7)]++;
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(umin).toBeGreaterThanOrEqual(0);
    expect(umax).toBeLessThan(1);
    expect(su / n).toBeCloseTo(0.5, 2);
    expect(sn / n).toBeCloseTo(0, 2);
    expect(Math.sqrt(sn2 / n - (sn / n) ** 2)).toBeCloseTo(1, 2);
    for (const c of counts) expect(Math.abs(c / n - 1 / 7)).toBeLessThan(0.005);
  });

  it("rejects bad seeds and arguments with a message", () => {
    expect(() => new Rng(1.5)).toThrow(/seed must be an integer/);
    expect(() => new Rng(Number.NaN)).toThrow(/seed/);
    expect(() => new Rng(1).int(0)).toThrow(/Rng.int/);
    expect(seedToUint32(-1)).toBe(0xffffffff);
    expect(seedToUint32(2 ** 40)).not.toBe(seedToUint32(0));
  });

  it("toRng shares a generator and seeds a new one from a number", () => {
    const r = new Rng(5);
    expect(toRng(r)).toBe(r);
    expect(toRng(5).nextUint32()).toBe(new Rng(5).nextUint32());
  });
});

describe("deriveSeed / epochOrder", () => {
  it("deriveSeed is deterministic and order-sensitive", () => {
    expect(deriveSeed(0, 1, 2)).toBe(deriveSeed(0, 1, 2));
    expect(deriveSeed(0, 1, 2)).not.toBe(deriveSeed(0, 2, 1));
    expect(deriveSeed(0, 1)).not.toBe(deriveSeed(0, 1, 0));
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(deriveSeed(3, i, 0));
    expect(seen.size).toBe(1000);
  });

  it("epochOrder is a reproducible permutation that changes with the epoch", () => {
    const o = epochOrder(100, 9, 0);
    expect([...o].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(epochOrder(100, 9, 0)).toEqual(o);
    expect(epochOrder(100, 9, 1)).not.toEqual(o);
    expect(epochOrder(100, 10, 0)).not.toEqual(o);
    expect(epochOrder(0, 1, 0)).toEqual([]);
    expect(() => epochOrder(-1, 0, 0)).toThrow(/epochOrder/);
  });
});
