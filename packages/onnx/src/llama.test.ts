import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { buildEmbed, buildLlamaStep } from "./llama-export.js";
import { OrtCausalLM, OrtKVCache } from "./runtime.js";
import { caseTensor, maxAbsDiff, tempDir } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";

let dir: string;
let lm: LlamaForCausalLM;
let ortLm: OrtCausalLM;

const ids2d = (key: string) => {
  const t = caseTensor(LLAMA_TINY, key);
  return tf.tensor2d(t.data as Int32Array, t.shape as [number, number], "int32");
};
const ref = (key: string) => caseTensor(LLAMA_TINY, key).data as Float32Array;

beforeAll(async () => {
  await initBackend("cpu");
  dir = tempDir("onnx-llama");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
  buildLlamaStep(lm).save(join(dir, "step.onnx"));
  buildEmbed(lm).save(join(dir, "embed.onnx"));
  const c = lm.config;
  ortLm = await OrtCausalLM.create(join(dir, "step.onnx"), join(dir, "embed.onnx"), { hiddenSize: c.hidden_size, vocabSize: c.vocab_size, numLayers: c.num_hidden_layers, numKeyValueHeads: c.num_key_value_heads, headDim: c.head_dim }, { intraOpThreads: 1 });
});
afterAll(() => {
  ortLm.dispose();
  lm.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("Llama step graph on ONNX Runtime", () => {
  it("matches the HF reference and tfjs on input_ids_2x12 (through the embedding graph)", async () => {
    const ids = ids2d("input_ids_2x12/inputs/input_ids");
    const emb = await ortLm.embed(ids);
    const embTf = lm.embedSync(ids);
    expect(maxAbsDiff(emb.dataSync(), embTf.dataSync())).toBe(0);
    const out = await ortLm.forward({ inputsEmbeds: emb });
    expect(out.logits.shape).toEqual([2, 12, 256]);
    expect(out.cache).toBeUndefined();
    expect(maxAbsDiff(out.logits.dataSync(), ref("input_ids_2x12/outputs/logits"))).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.lastHiddenState.dataSync(), ref("input_ids_2x12/outputs/last_hidden_state"))).toBeLessThan(1e-4);
    const tfOut = lm.forwardSync({ inputIds: ids });
    expect(maxAbsDiff(out.logits.dataSync(), tfOut.logits.dataSync())).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.lastHiddenState.dataSync(), tfOut.lastHiddenState.dataSync())).toBeLessThan(1e-4);
    tf.dispose([ids, emb, embTf, out.logits, out.lastHiddenState, tfOut.logits, tfOut.lastHiddenState]);
  });

  it("decodes with the KV cache (empty past first) like the full sequence: kv_cache_decode_7_plus_3", async () => {
    const ids = ids2d("kv_cache_decode_7_plus_3/inputs/input_ids"); // [1, 10]
    const cache = ortLm.newCache();
    expect(cache.length).toBe(0);
    const pre = await ortLm.forward({ inputIds: ids.slice([0, 0], [1, 7]), cache });
    expect(pre.cache).toBe(cache);
    expect(cache.length).toBe(7);
    expect(maxAbsDiff(pre.logits.dataSync(), ref("kv_cache_decode_7_plus_3/outputs/prefix_logits"))).toBeLessThan(1e-4);
    // K after RoPE and V, [1, kv, 7, hs], as HF's cache
    for (let l = 0; l < 2; l++) {
      expect(cache.keys[l].dims).toEqual([1, 2, 7, 16]);
      expect(maxAbsDiff(cache.keys[l].data as Float32Array, ref(`kv_cache_decode_7_plus_3/outputs/prefix_cache_layer${l}_key`))).toBeLessThan(1e-4);
      expect(maxAbsDiff(cache.values[l].data as Float32Array, ref(`kv_cache_decode_7_plus_3/outputs/prefix_cache_layer${l}_value`))).toBeLessThan(1e-4);
    }
    const steps: number[] = [];
    for (let t = 7; t < 10; t++) {
      const out = await ortLm.forward({ inputIds: ids.slice([0, t], [1, 1]), cache });
      steps.push(...out.logits.dataSync());
      tf.dispose([out.logits, out.lastHiddenState]);
    }
    expect(cache.length).toBe(10);
    expect(maxAbsDiff(steps, ref("kv_cache_decode_7_plus_3/outputs/full_logits_last3"))).toBeLessThan(1e-4);
    const full = await ortLm.forward({ inputIds: ids });
    expect(maxAbsDiff(full.logits.dataSync().slice(7 * 256), steps)).toBeLessThan(1e-4);
    cache.dispose();
    tf.dispose([ids, pre.logits, pre.lastHiddenState, full.logits, full.lastHiddenState]);
  });

  it("honours a left-padding attention mask and position ids (left_padded_batch_2x8)", async () => {
    const ids = ids2d("left_padded_batch_2x8/inputs/input_ids");
    const mask = ids2d("left_padded_batch_2x8/inputs/attention_mask");
    const positions = ids2d("left_padded_batch_2x8/inputs/position_ids");
    const valid = caseTensor(LLAMA_TINY, "left_padded_batch_2x8/outputs/valid").data;
    const expected = ref("left_padded_batch_2x8/outputs/logits");
    const check = (logits: Float32Array) => {
      let m = 0;
      for (let i = 0; i < 16; i++) if (valid[i]) for (let v = 0; v < 256; v++) m = Math.max(m, Math.abs(logits[i * 256 + v] - expected[i * 256 + v]));
      return m;
    };
    const given = await ortLm.forward({ inputIds: ids, attentionMask: mask, positionIds: positions });
    expect(check(given.logits.dataSync() as Float32Array)).toBeLessThan(1e-4);
    const derived = await ortLm.forward({ inputIds: ids, attentionMask: mask }); // positions from the mask
    expect(check(derived.logits.dataSync() as Float32Array)).toBeLessThan(1e-4);
    tf.dispose([ids, mask, positions, given.logits, given.lastHiddenState, derived.logits, derived.lastHiddenState]);
  });

  it("checks its inputs", async () => {
    const e = tf.zeros([1, 3, 32]) as tf.Tensor3D;
    await expect(ortLm.forward({ inputsEmbeds: e })).rejects.toThrow(/inputsEmbeds shape \[1,3,32\], expected \[B, T, 64\]/);
    await expect(ortLm.forward({})).rejects.toThrow(/exactly one/);
    await expect(ortLm.embed(tf.tensor2d([[300]], [1, 1], "int32"))).rejects.toThrow(/token id 300/);
    const foreign = { length: 0, dispose() {} };
    await expect(ortLm.forward({ inputIds: tf.tensor2d([[1]], [1, 1], "int32"), cache: foreign })).rejects.toThrow(/OrtKVCache/);
    expect(new OrtKVCache(2).length).toBe(0);
    e.dispose();
  });
});
