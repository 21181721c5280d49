import { describe, expect, it } from "vitest";
import { applyTemperature, argmax, sampleIndex, selectToken, softmax, topKFilter, topPFilter } from "./processors.js";
import { Mulberry32 as SamplerRng } from "@lm4lv/core";

const kept = (x: Float32Array) => Array.from(x.keys()).filter((i) => x[i] !== -Infinity);

describe("logits processors", () => {
  it("argmax takes the first of tied maxima", () => {
    expect(argmax([1, 3, 2, 3])).toBe(1);
    expect(argmax([-5])).toBe(0);
  });

  it("softmax is normalised and maps −Infinity to 0", () => {
    const p = softmax(Float32Array.from([0, Math.log(3), -Infinity]));
    expect(p[0]).toBeCloseTo(0.25, 7); // log(3) is rounded to float32
    expect(p[1]).toBeCloseTo(0.75, 7);
    expect(p[2]).toBe(0);
    const big = softmax(Float32Array.from([1000, 1000]));
    expect(Array.from(big)).toEqual([0.5, 0.5]);
  });

  it("temperature divides the logits and must be positive", () => {
    const x = Float32Array.from([2, -4, 1]);
    expect(Array.from(applyTemperature(x, 2))).toEqual([1, -2, 0.5]);
    expect(Array.from(x)).toEqual([2, -4, 1]); // input untouched
    expect(() => applyTemperature(x, 0)).toThrow(/positive/);
  });

  it("top-k keeps the k largest (and ties with the k-th)", () => {
    const x = Float32Array.from([0.1, 5, -2, 3, 3, 0]);
    expect(kept(topKFilter(x, 1))).toEqual([1]);
    expect(kept(topKFilter(x, 2))).toEqual([1, 3, 4]); // 3 is tied with the 2nd largest
    expect(kept(topKFilter(x, 4))).toEqual([0, 1, 3, 4]);
    expect(kept(topKFilter(x, 0))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(kept(topKFilter(x, 99))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(topKFilter(x, 2)[1]).toBe(5); // kept values unchanged
  });

  it("top-p keeps the smallest most-likely set whose probability reaches p", () => {
    // Probabilities 0.05, 0.5, 0.15, 0.3 (scrambled order).
    const x = Float32Array.from([0.05, 0.5, 0.15, 0.3].map(Math.log));
    expect(kept(topPFilter(x, 0.3))).toEqual([1]); // the top token alone already reaches p
    expect(kept(topPFilter(x, 0.5))).toEqual([1]);
    expect(kept(topPFilter(x, 0.7))).toEqual([1, 3]);
    expect(kept(topPFilter(x, 0.81))).toEqual([1, 2, 3]);
    expect(kept(topPFilter(x, 0.96))).toEqual([0, 1, 2, 3]);
    expect(kept(topPFilter(x, 1))).toEqual([0, 1, 2, 3]);
    expect(() => topPFilter(x, 0)).toThrow(/topP/);
  });

  it("sampleIndex follows the probabilities and is reproducible per seed", () => {
    const probs = [0.1, 0.6, 0, 0.3];
    const rng = new SamplerRng(42);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleIndex(probs, rng)]++;
    expect(counts[2]).toBe(0);
    probs.forEach((p, i) => expect(Math.abs(counts[i] / 20000 - p)).toBeLessThan(0.015));
    const a = new SamplerRng(7);
    const b = new SamplerRng(7);
    const draws = (r: SamplerRng) => Array.from({ length: 20 }, () => sampleIndex(probs, r));
    expect(draws(a)).toEqual(draws(b));
  });

  it("selectToken is greedy at temperature 0 and honours top-k / top-p when sampling", () => {
    const x = Float32Array.from([1, 2, 0.5, 1.9]);
    const rng = new SamplerRng(1);
    expect(selectToken(x, {}, rng)).toBe(1);
    expect(selectToken(x, { temperature: 0, topK: 3 }, rng)).toBe(1);
    for (let i = 0; i < 200; i++) expect(selectToken(x, { temperature: 5, topK: 1 }, rng)).toBe(1);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(selectToken(x, { temperature: 1, topK: 2 }, rng));
    expect([...seen].sort()).toEqual([1, 3]);
    seen.clear();
    for (let i = 0; i < 500; i++) seen.add(selectToken(x, { temperature: 1, topP: 0.01 }, rng));
    expect([...seen]).toEqual([1]);
    expect(() => selectToken(x, { temperature: -1 }, rng)).toThrow(/temperature/);
  });
});
