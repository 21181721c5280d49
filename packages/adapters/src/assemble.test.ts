import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LVAdapters } from "./adapters.js";
import { assembleBatchInputsEmbeds, assembleInputsEmbeds, assembleInputsEmbedsSync } from "./assemble.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { handBuiltSample, randomFeatures } from "./testing.js";

let lm: LlamaForCausalLM;
let adapters: LM4LVAdapters;
beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  // Non-zero task tokens, so a task row cannot be mistaken for anything else.
  const task = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i + 1));
  adapters = new LM4LVAdapters({ visionHidden: 12, llmHidden: 64, numTaskTokens: 3, seed: 2 }, { task_tokens: task });
});
afterAll(() => {
  adapters.dispose();
  lm.dispose();
});

/** Row t of a [1, T, D] tensor. */
function row(x: tf.Tensor, t: number): Float32Array {
  const D = x.shape[2]!;
  return (x.dataSync() as Float32Array).slice(t * D, (t + 1) * D);
}

describe("assembleInputsEmbeds", () => {
  it("puts text embeddings, adapted image features and task tokens at their positions", async () => {
    const N = 4;
    const s = handBuiltSample(N, 3);
    const feats = randomFeatures(2, N, 12, 1);
    const x = await assembleInputsEmbeds(lm, s, feats, adapters);
    const T = s.inputIds.length;
    expect(x.shape).toEqual([1, T, 64]);
    expect(maxAbsDiff(x.dataSync(), assembleInputsEmbedsSync(lm, s, feats, adapters).dataSync())).toBe(0);

    const text = lm.embedSync(tf.tensor2d([s.inputIds], [1, T], "int32"));
    const adapted = feats.map((f) => adapters.adapt(f));
    const kindAt: string[] = new Array(T).fill("text");
    for (const span of s.spans) for (let i = 0; i < span.length; i++) kindAt[span.start + i] = span.kind === "image" ? `image${span.imageIndex}:${i}` : `task:${i}`;
    for (let t = 0; t < T; t++) {
      const k = kindAt[t];
      const expected = k === "text" ? row(text, t)
        : k.startsWith("task") ? row(adapters.taskTokens.expandDims(0), Number(k.split(":")[1]))
        : row(adapted[Number(k[5])].expandDims(0), Number(k.split(":")[1]));
      expect(maxAbsDiff(row(x, t), expected), `position ${t} (${k})`).toBe(0);
    }
    // The two images really differ, so a swap would show.
    expect(maxAbsDiff(row(adapted[0].expandDims(0), 0), row(adapted[1].expandDims(0), 0))).toBeGreaterThan(0.01);
  });

  it("accepts [1, 1+N, Dv] tensors or one [numImages, 1+N, Dv] tensor", () => {
    const s = handBuiltSample(4, 3);
    const feats = randomFeatures(2, 4, 12, 1);
    const a = assembleInputsEmbedsSync(lm, s, feats, adapters);
    const b = assembleInputsEmbedsSync(lm, s, feats.map((f) => f.expandDims(0)), adapters);
    const c = assembleInputsEmbedsSync(lm, s, tf.stack(feats) as tf.Tensor3D, adapters);
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    expect(maxAbsDiff(a.dataSync(), c.dataSync())).toBe(0);
  });

  it("names a span whose length does not match its features", async () => {
    const s = handBuiltSample(4, 3);
    await expect(assembleInputsEmbeds(lm, s, randomFeatures(2, 5, 12, 1), adapters)).rejects.toThrow(/image span 0 at position 3 has 4 positions but image 0 has 5 feature rows/);
    expect(() => assembleInputsEmbedsSync(lm, s, randomFeatures(2, 5, 12, 1), adapters)).toThrow(/image span 0 at position 3 has 4 positions but image 0 has 5 feature rows/);
    expect(() => assembleInputsEmbedsSync(lm, handBuiltSample(4, 2), randomFeatures(2, 4, 12, 1), adapters)).toThrow(/task span at position 8 has 2 positions but there are 3 task tokens/);
    expect(() => assembleInputsEmbedsSync(lm, s, randomFeatures(1, 4, 12, 1), adapters)).toThrow(/image 1 has no features/);
    expect(() => assembleInputsEmbedsSync(lm, s, randomFeatures(2, 4, 10, 1), adapters)).toThrow(/width 10, the adapters expect visionHidden 12/);
  });

  it("batches same-layout samples and refuses different layouts", () => {
    const s0 = handBuiltSample(4, 3, 0);
    const s1 = handBuiltSample(4, 3, 5);
    const f0 = randomFeatures(2, 4, 12, 1);
    const f1 = randomFeatures(2, 4, 12, 2);
    const x = assembleBatchInputsEmbeds(lm, [s0, s1], [f0, f1], adapters);
    expect(x.shape).toEqual([2, s0.inputIds.length, 64]);
    const one = [assembleInputsEmbedsSync(lm, s0, f0, adapters), assembleInputsEmbedsSync(lm, s1, f1, adapters)];
    expect(maxAbsDiff(x.dataSync(), tf.concat(one, 0).dataSync())).toBe(0);
    expect(() => assembleBatchInputsEmbeds(lm, [s0, handBuiltSample(5, 3)], [f0, randomFeatures(2, 5, 12, 1)], adapters)).toThrow(/sample 1 has a different layout/);
  });
});
