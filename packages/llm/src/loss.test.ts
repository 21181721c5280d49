/**
 * Input-embedding noise (`embeddingNoiseDraws`, `addEmbeddingNoise`): the draws are standard normal,
 * a function of the batch's ids and the seed only; the noised rows match a float64 computation of
 * x + α · rms(x) · z. (ONNX Runtime's graph is checked against tfjs in @lm4lv/onnx's lm-engine.test.ts.)
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "@lm4lv/core";
import { addEmbeddingNoise, embeddingNoiseDraws } from "./loss.js";
import type { TokenBatch } from "./corpus.js";

beforeAll(async () => {
  await initBackend("cpu");
});

const batch = (offset: number): TokenBatch => ({ ids: Int32Array.from({ length: 4 * 33 }, (_, i) => (i * 31 + offset) % 101), batchSize: 4, seqLen: 32 });

describe("embeddingNoiseDraws", () => {
  it("is standard normal: mean, variance and the tail fraction of 65,536 draws", () => {
    const z = embeddingNoiseDraws(batch(0), 512, 0);
    expect(z.length).toBe(4 * 32 * 512);
    let sum = 0, sq = 0, beyond2 = 0;
    for (const v of z) {
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 2) beyond2++;
    }
    const mean = sum / z.length;
    expect(Math.abs(mean)).toBeLessThan(0.02); // 5 standard errors
    expect(Math.abs(sq / z.length - mean * mean - 1)).toBeLessThan(0.03);
    expect(Math.abs(beyond2 / z.length - 0.0455)).toBeLessThan(0.005); // P(|z| > 2) of N(0, 1)
  });

  it("depends on the ids and the seed only (a resumed run replays the same noise)", () => {
    const a = embeddingNoiseDraws(batch(0), 8, 0);
    expect(embeddingNoiseDraws(batch(0), 8, 0)).toEqual(a);
    expect(embeddingNoiseDraws(batch(1), 8, 0)).not.toEqual(a);
    expect(embeddingNoiseDraws(batch(0), 8, 1)).not.toEqual(a);
  });
});

describe("addEmbeddingNoise", () => {
  it("matches x + α · rms(x) · z computed in float64", () => {
    const [B, T, C] = [2, 3, 5];
    const x = Float32Array.from({ length: B * T * C }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 4)));
    const z = Float32Array.from({ length: B * T * C }, (_, i) => Math.cos(i * 0.9));
    const alpha = 0.3;
    const got = addEmbeddingNoise(tf.tensor3d(x, [B, T, C]), z, alpha).dataSync();
    for (let r = 0; r < B * T; r++) {
      let ms = 0;
      for (let c = 0; c < C; c++) ms += x[r * C + c] ** 2 / C;
      for (let c = 0; c < C; c++) {
        const want = x[r * C + c] + alpha * Math.sqrt(ms) * z[r * C + c];
        expect(Math.abs(got[r * C + c] - want), `row ${r} col ${c}`).toBeLessThan(1e-5);
      }
    }
  });
});
