import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { generateVisualTokens } from "./visual.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { RandomLinearAdapters } from "./testing.js";

const DV = 12;
const PROMPT = [1, 11, 186, 253, 48, 97, 30];

let lm: LlamaForCausalLM;
let adapters: RandomLinearAdapters;
let prompt: tf.Tensor3D;
beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  adapters = new RandomLinearAdapters(DV, 64, 3);
  prompt = lm.embedSync(tf.tensor2d([PROMPT], [1, PROMPT.length], "int32"));
});
afterAll(() => {
  adapters.dispose();
  lm.dispose();
});

describe("generateVisualTokens", () => {
  it("gives the same features with and without the KV cache", async () => {
    const before = tf.memory().numTensors;
    const cached = await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 20 });
    expect(tf.memory().numTensors).toBe(before + 1); // only the result is left
    const full = await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 20, useCache: false });
    expect(cached.shape).toEqual([1, 20, DV]);
    expect(full.shape).toEqual([1, 20, DV]);
    expect(maxAbsDiff(cached.dataSync(), full.dataSync())).toBeLessThan(1e-4);
    // Features vary along the sequence (the loop really feeds back).
    const d = cached.dataSync();
    expect(maxAbsDiff(d.slice(0, DV), d.slice(5 * DV, 6 * DV))).toBeGreaterThan(1e-3);
    tf.dispose([cached, full]);
  });

  it("follows the definition step by step: f_i = deAdapt(h), next input adapt(f_i)", async () => {
    const got = (await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 3 })).dataSync();
    let seq = prompt;
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { lastHiddenState } = lm.forwardSync({ inputsEmbeds: seq });
      const T = seq.shape[1];
      const f = adapters.deAdapt(lastHiddenState.slice([0, T - 1, 0], [1, 1, 64])); // (1, 1, Dv)
      expected.push(...f.dataSync());
      seq = tf.concat([seq, adapters.adapt(f)], 1);
    }
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4);
  });

  it("is deterministic and checks its inputs", async () => {
    const a = await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 4 });
    const b = await generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 4 });
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    await expect(generateVisualTokens({ lm, adapters, promptEmbeds: tf.zeros([1, 3, 32]) as tf.Tensor3D })).rejects.toThrow(/promptEmbeds shape \[1,3,32\], expected \[1, T, 64\]/);
    await expect(generateVisualTokens({ lm, adapters, promptEmbeds: prompt, numTokens: 0 })).rejects.toThrow(/numTokens/);
  });
});
