import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { ADAPTER_PARAM_NAMES, LM4LVAdapters } from "./adapters.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { randomFeatures } from "./testing.js";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("LM4LVAdapters", () => {
  it("has the documented parameters, PyTorch layout, zero task tokens", () => {
    const a = new LM4LVAdapters({ visionHidden: 12, llmHidden: 20, numTaskTokens: 3, seed: 1 });
    const shapes = Object.fromEntries(Object.entries(a.namedVariables()).map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      "adapter.weight": [20, 12],
      "adapter.bias": [20],
      "de_adapter.weight": [12, 20],
      "de_adapter.bias": [12],
      task_tokens: [3, 20],
    });
    expect(a.variables().length).toBe(ADAPTER_PARAM_NAMES.length);
    expect(a.variables().every((v) => v.trainable)).toBe(true);
    expect(Array.from(a.taskTokens.dataSync()).every((x) => x === 0)).toBe(true);
    a.dispose();
  });

  it("draws weight and bias from U(−1/√fan_in, 1/√fan_in), seeded", () => {
    const a = new LM4LVAdapters({ visionHidden: 16, llmHidden: 64, seed: 7 });
    const b = new LM4LVAdapters({ visionHidden: 16, llmHidden: 64, seed: 7 });
    const c = new LM4LVAdapters({ visionHidden: 16, llmHidden: 64, seed: 8 });
    const check = (v: tf.Tensor, fanIn: number) => {
      const d = Array.from(v.dataSync());
      const bound = 1 / Math.sqrt(fanIn);
      const max = d.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(max).toBeLessThanOrEqual(bound);
      expect(max).toBeGreaterThan(0.9 * bound); // spread over the whole interval
      const mean = d.reduce((s, x) => s + x, 0) / d.length;
      expect(Math.abs(mean)).toBeLessThan(0.2 * bound);
    };
    check(a.adapterWeight, 16);
    check(a.adapterBias, 16);
    check(a.deAdapterWeight, 64);
    check(a.deAdapterBias, 64);
    expect(maxAbsDiff(a.adapterWeight.dataSync(), b.adapterWeight.dataSync())).toBe(0);
    expect(maxAbsDiff(a.deAdapterBias.dataSync(), b.deAdapterBias.dataSync())).toBe(0);
    expect(maxAbsDiff(a.adapterWeight.dataSync(), c.adapterWeight.dataSync())).toBeGreaterThan(0);
    [a, b, c].forEach((x) => x.dispose());
  });

  it("adapt / deAdapt compute x·Wᵀ + b on [B, N, D]", () => {
    const a = new LM4LVAdapters({ visionHidden: 5, llmHidden: 7, seed: 3 });
    const [f0, f1] = randomFeatures(2, 4, 5, 11);
    const x = tf.stack([f0, f1]) as tf.Tensor3D; // (2, 4, 5)
    const y = a.adapt(x);
    expect(y.shape).toEqual([2, 4, 7]);
    const W = a.adapterWeight.dataSync(), bias = a.adapterBias.dataSync(), xs = x.dataSync();
    const expected = new Float64Array(2 * 4 * 7);
    for (let r = 0; r < 8; r++) for (let o = 0; o < 7; o++) {
      let s = bias[o];
      for (let i = 0; i < 5; i++) s += xs[r * 5 + i] * W[o * 5 + i];
      expected[r * 7 + o] = s;
    }
    expect(maxAbsDiff(y.dataSync(), expected)).toBeLessThan(1e-5);
    const back = a.deAdapt(y);
    expect(back.shape).toEqual([2, 4, 5]);
    const V = a.deAdapterWeight.dataSync(), c = a.deAdapterBias.dataSync(), ys = y.dataSync();
    const expectedBack = new Float64Array(2 * 4 * 5);
    for (let r = 0; r < 8; r++) for (let o = 0; o < 5; o++) {
      let s = c[o];
      for (let i = 0; i < 7; i++) s += ys[r * 7 + i] * V[o * 7 + i];
      expectedBack[r * 5 + o] = s;
    }
    expect(maxAbsDiff(back.dataSync(), expectedBack)).toBeLessThan(1e-5);
    expect(() => a.adapt(tf.zeros([1, 2, 6]))).toThrow(/expected last dimension 5/);
    a.dispose();
  });

  it("can take initial values and checks their sizes", () => {
    const a = new LM4LVAdapters({ visionHidden: 2, llmHidden: 3, numTaskTokens: 1 }, { task_tokens: Float32Array.from([1, 2, 3]) });
    expect(Array.from(a.taskTokens.dataSync())).toEqual([1, 2, 3]);
    expect(() => new LM4LVAdapters({ visionHidden: 2, llmHidden: 3, numTaskTokens: 1 }, { "adapter.bias": new Float32Array(2) })).toThrow(/adapter.bias has 2 values, expected 3/);
    expect(() => new LM4LVAdapters({ visionHidden: 0, llmHidden: 3 })).toThrow(/visionHidden/);
    a.dispose();
    expect(() => a.variables()).toThrow(/disposed/);
  });
});
