import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LVAdapters } from "./adapters.js";
import { loadAdapters, loadLora, saveAdapters } from "./checkpoint.js";
import { lm4lvForwardLoss } from "./loss.js";
import { LlamaLora, loraParamName, loraParamShapes } from "./lora.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { handBuiltSample, randomFeatures } from "./testing.js";
import { Mulberry32 } from "@lm4lv/core";

let lm: LlamaForCausalLM;
const IDS = tf.tensor2d([[1, 11, 186, 253, 48, 97, 30, 5]], [1, 8], "int32");
beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
});
afterAll(() => lm.dispose());

/** Random values for every B matrix (A keeps its seeded init). */
function randomB(config: { rank: number; alpha: number }, seed: number): Record<string, Float32Array> {
  const rng = new Mulberry32(seed);
  const out: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(loraParamShapes(lm, config))) {
    if (name.endsWith("lora_B")) out[name] = rng.uniform(shape[0] * shape[1], -0.2, 0.2);
  }
  return out;
}

describe("LlamaLora", () => {
  it("a fresh LoRA (B = 0) leaves the model unchanged", async () => {
    const lora = new LlamaLora(lm, { rank: 4, alpha: 8 });
    expect(lora.variables().length).toBe(2 * 4 * 2); // layers × q,k,v,o × A,B
    expect(lora.namedVariables()[loraParamName(1, "o", "A")].shape).toEqual([4, 64]);
    expect(lora.namedVariables()[loraParamName(0, "k", "B")].shape).toEqual([32, 4]);
    const a = lm.forwardSync({ inputIds: IDS }).logits;
    const b = (await lora.wrap().forward({ inputIds: IDS })).logits;
    expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBe(0);
    lora.dispose();
  });

  it("adds (α/r)·B·A to the projections: same as a Llama with merged weights computed in plain JS", () => {
    const config = { rank: 3, alpha: 6, targets: ["q", "v"] as const, seed: 2 };
    const lora = new LlamaLora(lm, { ...config, targets: [...config.targets] }, randomB(config, 4));
    const snap = lora.snapshot();
    const merged = new Map(lm.namedParameters()); // HF layout: W [out, in]
    for (let l = 0; l < 2; l++) {
      for (const t of config.targets) {
        const name = `model.layers.${l}.self_attn.${t}_proj.weight`;
        const W = merged.get(name)!;
        const [out, inp] = W.shape;
        const w = W.dataSync();
        const A = snap[loraParamName(l, t, "A")].data; // (r, in)
        const B = snap[loraParamName(l, t, "B")].data; // (out, r)
        const m = new Float32Array(out * inp);
        for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) {
          let d = 0;
          for (let r = 0; r < config.rank; r++) d += B[o * config.rank + r] * A[r * inp + i];
          m[o * inp + i] = w[o * inp + i] + (config.alpha / config.rank) * d;
        }
        merged.set(name, tf.tensor2d(m, [out, inp]));
      }
    }
    const reference = LlamaForCausalLM.fromParameters(lm.config, merged);
    const expected = reference.forwardSync({ inputIds: IDS }).logits.dataSync();
    const got = lora.wrap().forwardSync({ inputIds: IDS }).logits.dataSync();
    expect(maxAbsDiff(got, expected)).toBeLessThan(1e-4);
    expect(maxAbsDiff(got, lm.forwardSync({ inputIds: IDS }).logits.dataSync())).toBeGreaterThan(1e-3);

    // With a KV cache: 7 positions, then 1 — the last logits equal the full pass.
    const wrapped = lora.wrap();
    const first = wrapped.forwardSync({ inputIds: IDS.slice([0, 0], [1, 7]) as tf.Tensor2D, useCache: true });
    const step = wrapped.forwardSync({ inputIds: IDS.slice([0, 7], [1, 1]) as tf.Tensor2D, cache: first.cache });
    expect(first.cache!.length).toBe(8);
    expect(maxAbsDiff(step.logits.dataSync(), expected.slice(7 * 256))).toBeLessThan(1e-4);
    first.cache!.dispose();
    lora.dispose();
  });

  it("trains with the adapters: gradients reach the LoRA matrices and survive a checkpoint", () => {
    const adapters = new LM4LVAdapters({ visionHidden: 12, llmHidden: 64, numTaskTokens: 3, seed: 1 });
    const lora = new LlamaLora(lm, { rank: 2, alpha: 4, seed: 3 });
    const s = handBuiltSample(4, 3);
    const feats = randomFeatures(2, 4, 12, 5);
    const vars = [...adapters.variables(), ...lora.variables()];
    const { grads } = tf.variableGrads(() => lm4lvForwardLoss(lora.wrap(), adapters, [{ seq: s, imageFeatures: feats }]).loss, vars);
    for (const [name, v] of Object.entries(lora.namedVariables())) {
      const g = grads[v.name].abs().max().dataSync()[0];
      // With B = 0 the gradient of A is exactly zero (as in any LoRA), B's is not.
      if (name.endsWith("lora_B")) expect(g, name).toBeGreaterThan(1e-7);
      else expect(g, name).toBe(0);
    }

    const dir = mkdtempSync(join(tmpdir(), "lm4lv-lora-"));
    try {
      const info = saveAdapters(dir, adapters, { visionModel: "m", llm: "l", task: "t", numVisualTokens: 4, step: 1 }, { lora });
      expect(info.lora).toEqual({ rank: 2, alpha: 4, targets: ["q", "k", "v", "o"], seed: 3 });
      const { adapters: loaded } = loadAdapters(dir, { visionHidden: 12, llmHidden: 64 });
      const back = loadLora(dir, lm)!;
      for (const [name, t] of Object.entries(lora.snapshot())) expect(maxAbsDiff(back.snapshot()[name].data, t.data), name).toBe(0);
      loaded.dispose();
      back.dispose();
      // A LoRA for a model with other projection sizes is refused by name.
      const other = LlamaForCausalLM.fromConfig({ ...lm.config, hidden_size: 32, head_dim: 8 }, 0);
      expect(() => loadLora(dir, other)).toThrow(/lora\.layers\.0\.self_attn\.q_proj\.lora_A: expected shape \[2,32\], found \[2,64\]/);
      other.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    adapters.dispose();
    lora.dispose();
  });
});
