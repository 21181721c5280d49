import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend, SafetensorsFile } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { generateText } from "./text.js";
import { generateVisualTokens } from "./visual.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { RandomLinearAdapters } from "./testing.js";

const DV = 12;
let lm: LlamaForCausalLM;
let prompt: number[];
let reference: number[];
beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  const cases = SafetensorsFile.open(`${LLAMA_TINY}/cases.safetensors`);
  prompt = Array.from(cases.read("greedy_8_tokens/inputs/prompt_ids").data);
  reference = Array.from(cases.read("greedy_8_tokens/outputs/generated_ids").data);
  cases.close();
});
afterAll(() => lm.dispose());

/** A toy decoder: one letter per id. */
const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("");

describe("generateText", () => {
  it("greedy equals Hugging Face's greedy ids and LlamaForCausalLM.generateGreedy", async () => {
    expect(prompt).toEqual([1, 11, 186, 253, 48]);
    expect(reference.length).toBe(8);
    const r = await generateText({ lm, promptIds: prompt, maxNewTokens: 8 });
    expect(r.tokens).toEqual(reference);
    expect(r.finishReason).toBe("length");
    expect(r.images).toEqual([]);
    expect(lm.generateGreedy([prompt], 8).tokens[0]).toEqual(r.tokens);
    // Through prompt embeddings: the same.
    const embeds = lm.embedSync(tf.tensor2d([prompt], [1, prompt.length], "int32"));
    expect((await generateText({ lm, promptEmbeds: embeds, maxNewTokens: 8 })).tokens).toEqual(reference);
  });

  it("samples reproducibly per seed; top-k 1 is greedy", async () => {
    const run = async (seed: number) => (await generateText({ lm, promptIds: prompt, maxNewTokens: 10, temperature: 1.5, seed })).tokens;
    const a = await run(1);
    expect(await run(1)).toEqual(a);
    expect(await run(2)).not.toEqual(a);
    expect((await generateText({ lm, promptIds: prompt, maxNewTokens: 8, temperature: 2, topK: 1, seed: 5 })).tokens).toEqual(reference);
    expect((await generateText({ lm, promptIds: prompt, maxNewTokens: 8, temperature: 1, topP: 1e-6, seed: 5 })).tokens).toEqual(reference);
  });

  it("stops on EOS, on id stop sequences and on string stop sequences", async () => {
    // The reference greedy ids are 75, 2, 221, 65, 99, ...; id 2 is this model's EOS.
    const eos = await generateText({ lm, promptIds: prompt, maxNewTokens: 8, eosId: 2 });
    expect(eos.tokens).toEqual(reference.slice(0, 2));
    expect(eos.finishReason).toBe("eos");
    const ids = await generateText({ lm, promptIds: prompt, maxNewTokens: 8, stopSequences: [[221, 65]] });
    expect(ids.tokens).toEqual(reference.slice(0, 4));
    expect(ids.finishReason).toBe("stop");
    const stopText = decode(reference.slice(3, 5));
    const str = await generateText({ lm, promptIds: prompt, maxNewTokens: 8, stopSequences: [stopText], decode });
    expect(str.tokens).toEqual(reference.slice(0, 5));
    expect(str.text).toBe(decode(reference.slice(0, 3)));
    expect(str.finishReason).toBe("stop");
    await expect(generateText({ lm, promptIds: prompt, maxNewTokens: 2, stopSequences: ["x"] })).rejects.toThrow(/need `decode`/);
  });

  it("switches to visual mode after the image-start ids and back to text", async () => {
    const adapters = new RandomLinearAdapters(DV, 64, 9);
    const startIds = reference.slice(1, 3); // the model writes these greedily: plays the role of "<Img>"
    const N = 6;
    const seen: number[] = [];
    const r = await generateText({ lm, promptIds: prompt, maxNewTokens: 6, imageStartIds: startIds, adapters, numVisualTokens: N, onImage: (_f, i) => seen.push(i) });
    expect(seen).toEqual([0]);
    expect(r.images.length).toBe(1);
    expect(r.imageOffsets).toEqual([3]);
    expect(r.tokens.slice(0, 3)).toEqual(reference.slice(0, 3));
    expect(r.tokens.length).toBe(6); // visual tokens do not count

    // The image equals generateVisualTokens on the prompt + the text written before it.
    const before = [...prompt, ...reference.slice(0, 3)];
    const promptEmbeds = lm.embedSync(tf.tensor2d([before], [1, before.length], "int32"));
    const image = await generateVisualTokens({ lm, adapters, promptEmbeds, numTokens: N, useCache: false });
    expect(r.images[0].shape).toEqual([1, N, DV]);
    expect(maxAbsDiff(r.images[0].dataSync(), image.dataSync())).toBeLessThan(1e-4);

    // The first token after the image is the argmax after feeding every visual feature back.
    const full = tf.concat([promptEmbeds, adapters.adapt(image)], 1);
    const logits = lm.forwardSync({ inputsEmbeds: full }).logits;
    const last = logits.slice([0, full.shape[1]! - 1, 0], [1, 1, 256]).argMax(-1).dataSync()[0];
    expect(r.tokens[3]).toBe(last);
    adapters.dispose();
    tf.dispose(r.images);
  });

  it("checks its options", async () => {
    await expect(generateText({ lm, maxNewTokens: 2 })).rejects.toThrow(/exactly one of promptEmbeds \/ promptIds/);
    await expect(generateText({ lm, promptIds: prompt, maxNewTokens: 2, imageStartIds: [5] })).rejects.toThrow(/needs `adapters`/);
    expect((await generateText({ lm, promptIds: prompt, maxNewTokens: 0 })).tokens).toEqual([]);
  });
});
