import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { applyRotary, computeInvFreq, ropeCosSin } from "./rope.js";

describe("computeInvFreq", () => {
  it("plain RoPE: 1 / theta^(2i/hs)", () => {
    const f = computeInvFreq({ head_dim: 8, rope_theta: 10000, rope_scaling: null });
    expect(Array.from(f)).toEqual([1, 0.1, 0.01, 0.001].map(Math.fround));
  });

  it("linear scaling divides every frequency", () => {
    const f = computeInvFreq({ head_dim: 4, rope_theta: 100, rope_scaling: { rope_type: "linear", factor: 4 } });
    expect(Array.from(f)).toEqual([0.25, 0.025].map(Math.fround));
  });

  it("llama3 scaling (Llama 3.1 8B parameters) matches a hand computation", () => {
    const scaling = { rope_type: "llama3" as const, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const f = computeInvFreq({ head_dim: 128, rope_theta: 500000, rope_scaling: scaling });
    const plain = computeInvFreq({ head_dim: 128, rope_theta: 500000, rope_scaling: null });
    // Wavelength 2π/f < 8192/4 = 2048 → kept (i ≤ 28); > 8192/1 → divided by 8 (i ≥ 35).
    for (let i = 0; i <= 28; i++) expect(f[i]).toBe(plain[i]);
    for (let i = 35; i < 64; i++) expect(f[i]).toBeCloseTo(plain[i] / 8, 12);
    // i = 32: f₀ = 500000^(−1/2) = 1.41421356e-3, wavelength = 2π/f₀ = 4442.8829,
    // smooth = (8192/4442.8829 − 1)/(4 − 1) = 0.2812826,
    // f = (1 − 0.2812826)·f₀/8 + 0.2812826·f₀ = 0.3711223·f₀ = 5.248462e-4.
    expect(f[32]).toBeCloseTo(5.248462e-4, 9);
    for (let i = 29; i <= 34; i++) {
      expect(f[i]).toBeLessThan(plain[i]);
      expect(f[i]).toBeGreaterThan(plain[i] / 8);
    }
  });
});

describe("applyRotary", () => {
  it("rotates the pair (i, i + hs/2) by position · inv_freq[i] and keeps the norm", () => {
    const invFreq = new Float32Array([1, 0.5]);
    const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]);
    const { cos, sin } = ropeCosSin(tf.tensor2d([[3]], [1, 1], "int32"), invFreq);
    const y = applyRotary(x, cos, sin).dataSync();
    const rot = (a: number, b: number, ang: number) => [a * Math.cos(ang) - b * Math.sin(ang), b * Math.cos(ang) + a * Math.sin(ang)];
    const [y0, y2] = rot(1, 3, 3);
    const [y1, y3] = rot(2, 4, 1.5);
    [y0, y1, y2, y3].forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
  });
});
