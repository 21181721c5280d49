/**
 * Parity with Hugging Face's PyTorch LlamaForCausalLM on the llama_tiny fixture
 * (fixtures/llama_tiny, see its README), on every backend.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend, SafetensorsFile } from "@lm4lv/core";
import { LlamaForCausalLM } from "./model.js";
import { LlamaKVCache } from "./cache.js";
import { LLAMA_TINY_DIR as FIXTURE } from "./testing.js";

const ATOL = 1e-4;
const RTOL = 1e-4;

const cases = SafetensorsFile.open(`${FIXTURE}/cases.safetensors`);
afterAll(() => cases.close());

function fx(key: string): { shape: number[]; data: Float32Array | Int32Array | Uint8Array } {
  return cases.read(key);
}
function ids(key: string): tf.Tensor2D {
  const t = fx(key);
  return tf.tensor2d(t.data as Int32Array, t.shape as [number, number], "int32");
}
function floats(key: string): tf.Tensor {
  const t = fx(key);
  return tf.tensor(t.data as Float32Array, t.shape, "float32");
}

/** Max |a − e| − (atol + rtol·|e|) must be ≤ 0; reports the worst index. */
function expectClose(actual: tf.Tensor | ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = ATOL): void {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  expect(a.length, `${what}: length`).toBe(expected.length);
  let worst = -Infinity;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const excess = Math.abs(a[i] - expected[i]) - (atol + RTOL * Math.abs(expected[i]));
    if (!(excess <= worst)) { worst = excess; at = i; }
  }
  expect(worst <= 0, `${what}: index ${at} got ${a[at]}, expected ${expected[at]}`).toBe(true);
}

/** Columns [from, from+n) of a (B, T, D) array as a flat Float32Array. */
function sliceT(data: ArrayLike<number>, shape: number[], from: number, n: number): Float32Array {
  const [B, T, D] = shape;
  const out = new Float32Array(B * n * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < n; t++) for (let d = 0; d < D; d++) out[(b * n + t) * D + d] = data[(b * T + from + t) * D + d];
  return out;
}

describe.each(["wasm", "cpu"])("LlamaForCausalLM vs HF llama_tiny on %s", (backend) => {
  let lm: LlamaForCausalLM;
  beforeAll(async () => {
    expect(await initBackend(backend)).toBe(backend);
    lm = LlamaForCausalLM.fromPretrained(FIXTURE);
  });
  afterAll(() => lm.dispose());

  it("input_ids_2x12: logits, last hidden state and every hidden state", async () => {
    const inputIds = ids("input_ids_2x12/inputs/input_ids");
    const out = await lm.forward({ inputIds, outputHiddenStates: true });
    expectClose(out.logits, fx("input_ids_2x12/outputs/logits").data as Float32Array, "logits");
    expectClose(out.lastHiddenState, fx("input_ids_2x12/outputs/last_hidden_state").data as Float32Array, "last_hidden_state");
    expect(out.hiddenStates).toHaveLength(3);
    out.hiddenStates!.forEach((h, i) => expectClose(h, fx(`input_ids_2x12/outputs/hidden_states_${i}`).data as Float32Array, `hidden_states_${i}`));
    expect(out.cache).toBeUndefined();
    tf.dispose([inputIds, out.logits, out.lastHiddenState, ...out.hiddenStates!]);
  });

  it("inputs_embeds_1x10: continuous inputs", async () => {
    const inputsEmbeds = floats("inputs_embeds_1x10/inputs/inputs_embeds") as tf.Tensor3D;
    const out = await lm.forward({ inputsEmbeds });
    expectClose(out.logits, fx("inputs_embeds_1x10/outputs/logits").data as Float32Array, "logits");
    expectClose(out.lastHiddenState, fx("inputs_embeds_1x10/outputs/last_hidden_state").data as Float32Array, "last_hidden_state");
    tf.dispose([inputsEmbeds, out.logits, out.lastHiddenState]);
  });

  it("kv_cache_decode_7_plus_3: prefix cache (K after RoPE) and single-token steps", async () => {
    const all = fx("kv_cache_decode_7_plus_3/inputs/input_ids").data as Int32Array;
    const prefix = tf.tensor2d(all.slice(0, 7), [1, 7], "int32");
    const first = await lm.forward({ inputIds: prefix, useCache: true });
    const cache = first.cache!;
    expect(cache).toBeInstanceOf(LlamaKVCache);
    expect(cache.length).toBe(7);
    expectClose(first.logits, fx("kv_cache_decode_7_plus_3/outputs/prefix_logits").data as Float32Array, "prefix_logits");
    for (let l = 0; l < 2; l++) {
      const kv = cache.layer(l)!;
      expect(kv.key.shape).toEqual([1, 2, 7, 16]);
      expectClose(kv.key, fx(`kv_cache_decode_7_plus_3/outputs/prefix_cache_layer${l}_key`).data as Float32Array, `layer ${l} key`);
      expectClose(kv.value, fx(`kv_cache_decode_7_plus_3/outputs/prefix_cache_layer${l}_value`).data as Float32Array, `layer ${l} value`);
    }
    const step = fx("kv_cache_decode_7_plus_3/outputs/incremental_step_logits");
    const full = fx("kv_cache_decode_7_plus_3/outputs/full_logits");
    for (let j = 0; j < 3; j++) {
      const tok = tf.tensor2d([all[7 + j]], [1, 1], "int32");
      const out = await lm.forward({ inputIds: tok, cache });
      expect(out.cache).toBe(cache);
      expect(cache.length).toBe(8 + j);
      expectClose(out.logits, sliceT(step.data as Float32Array, step.shape, j, 1), `step ${j} logits`);
      expectClose(out.logits, sliceT(full.data as Float32Array, full.shape, 7 + j, 1), `step ${j} vs full logits`);
      tf.dispose([tok, out.logits, out.lastHiddenState]);
    }
    cache.dispose();
    tf.dispose([prefix, first.logits, first.lastHiddenState]);
  });

  it("inputs_embeds_kv_cache_6_plus_4: embeddings fed one at a time (the LM4LV loop)", async () => {
    const embeds = floats("inputs_embeds_kv_cache_6_plus_4/inputs/inputs_embeds") as tf.Tensor3D; // (1, 10, 64)
    const cache = lm.newCache();
    const prefix = await lm.forward({ inputsEmbeds: embeds.slice([0, 0, 0], [1, 6, 64]), cache });
    expectClose(prefix.lastHiddenState, fx("inputs_embeds_kv_cache_6_plus_4/outputs/prefix_last_hidden_state").data as Float32Array, "prefix hidden");
    expectClose(prefix.logits, fx("inputs_embeds_kv_cache_6_plus_4/outputs/prefix_logits").data as Float32Array, "prefix logits");
    const stepH = fx("inputs_embeds_kv_cache_6_plus_4/outputs/incremental_step_last_hidden_state");
    const stepL = fx("inputs_embeds_kv_cache_6_plus_4/outputs/incremental_step_logits");
    const fullH = fx("inputs_embeds_kv_cache_6_plus_4/outputs/full_last_hidden_state");
    for (let j = 0; j < 4; j++) {
      const e = embeds.slice([0, 6 + j, 0], [1, 1, 64]);
      const out = await lm.forward({ inputsEmbeds: e, cache });
      expectClose(out.lastHiddenState, sliceT(stepH.data as Float32Array, stepH.shape, j, 1), `step ${j} hidden`);
      expectClose(out.lastHiddenState, sliceT(fullH.data as Float32Array, fullH.shape, 6 + j, 1), `step ${j} vs full hidden`);
      expectClose(out.logits, sliceT(stepL.data as Float32Array, stepL.shape, j, 1), `step ${j} logits`);
      tf.dispose([e, out.logits, out.lastHiddenState]);
    }
    expect(cache.length).toBe(10);
    cache.dispose();
    tf.dispose([embeds, prefix.logits, prefix.lastHiddenState]);
  });

  it("left_padded_batch_2x8: valid positions, positions from the mask or given", async () => {
    const inputIds = ids("left_padded_batch_2x8/inputs/input_ids");
    const attentionMask = ids("left_padded_batch_2x8/inputs/attention_mask");
    const positionIds = ids("left_padded_batch_2x8/inputs/position_ids");
    const expected = fx("left_padded_batch_2x8/outputs/logits").data as Float32Array;
    const valid = fx("left_padded_batch_2x8/outputs/valid").data as Uint8Array;
    const V = 256;
    const pick = (data: ArrayLike<number>) => {
      const out: number[] = [];
      valid.forEach((ok, i) => { if (ok) for (let v = 0; v < V; v++) out.push(data[i * V + v]); });
      return out;
    };
    for (const given of [undefined, positionIds]) {
      const out = await lm.forward({ inputIds, attentionMask, positionIds: given });
      const logits = out.logits.dataSync();
      expect(Array.from(logits).every(Number.isFinite)).toBe(true);
      expectClose(pick(logits), pick(expected), given ? "logits (given positions)" : "logits (positions from mask)");
      // Row 0's real tokens alone give the same logits.
      expectClose(sliceT(logits, [2, 8, V], 3, 5).subarray(0, 5 * V), fx("left_padded_batch_2x8/outputs/row0_unpadded_logits").data as Float32Array, "row 0 unpadded");
      tf.dispose([out.logits, out.lastHiddenState]);
    }
    tf.dispose([inputIds, attentionMask, positionIds]);
  });

  it("greedy_8_tokens: exact ids and step logits", async () => {
    const prompt = ids("greedy_8_tokens/inputs/prompt_ids");
    const before = tf.memory().numTensors;
    const { tokens, stepLogits } = lm.generateGreedy(prompt, 8, { keepLogits: true });
    expect(tf.memory().numTensors).toBe(before); // the cache and every step's tensors were freed
    expect(tokens).toEqual([Array.from(fx("greedy_8_tokens/outputs/generated_ids").data)]);
    const expected = fx("greedy_8_tokens/outputs/step_logits");
    stepLogits!.forEach((l, i) => expectClose(l, sliceT(expected.data as Float32Array, expected.shape, i, 1), `step ${i} logits`));
    prompt.dispose();
  });

  it("embed() looks up the table and forward leaks no tensors", async () => {
    const inputIds = tf.tensor2d([[1, 15, 237]], [1, 3], "int32");
    const e = await lm.embed(inputIds);
    const h0 = fx("input_ids_2x12/outputs/hidden_states_0");
    expectClose(e, sliceT(h0.data as Float32Array, h0.shape, 0, 3).subarray(0, 3 * 64), "embeddings");
    const before = tf.memory().numTensors;
    const out = await lm.forward({ inputIds, useCache: true });
    expect(tf.memory().numTensors).toBe(before + 2 + 2 * 2); // logits, hidden, K/V per layer
    out.cache!.dispose();
    tf.dispose([out.logits, out.lastHiddenState]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([inputIds, e]);
  });

  it("rejects inconsistent inputs by name", async () => {
    const inputIds = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
    await expect(lm.forward({})).rejects.toThrow(/exactly one of inputIds \/ inputsEmbeds/);
    expect(() => lm.forwardSync({})).toThrow(/exactly one of inputIds \/ inputsEmbeds/);
    expect(() => lm.forwardSync({ inputIds, attentionMask: tf.ones([1, 2]) as tf.Tensor2D })).toThrow(/attentionMask shape \[1,2\], expected \[1, 3\]/);
    expect(() => lm.forwardSync({ inputsEmbeds: tf.zeros([1, 3, 8]) as tf.Tensor3D })).toThrow(/inputsEmbeds shape \[1,3,8\], expected \[B, T, 64\]/);
    inputIds.dispose();
  });
});
