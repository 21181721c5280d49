import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LVAdapters } from "./adapters.js";
import { assembleInputsEmbedsSync } from "./assemble.js";
import { lm4lvForwardLoss, lm4lvLoss } from "./loss.js";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";
import { handBuiltSample, randomFeatures } from "./testing.js";
import type { HandBuilt } from "./testing.js";

const N = 5; // visual tokens per image
const K = 3; // task tokens
const DV = 12;

let lm: LlamaForCausalLM;
beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(LLAMA_TINY);
});
afterAll(() => lm.dispose());

const made: LM4LVAdapters[] = [];
function newAdapters(seed: number, withTask = false): LM4LVAdapters {
  const task = withTask ? { task_tokens: Float32Array.from({ length: K * 64 }, (_, i) => 0.3 * Math.cos(i)) } : undefined;
  const a = new LM4LVAdapters({ visionHidden: DV, llmHidden: 64, numTaskTokens: K, seed }, task);
  made.push(a);
  return a;
}
afterEach(() => made.splice(0).forEach((a) => a.dispose()));

/** CE and MSE of spec §4 in float64 from the LM's outputs as plain arrays. */
function directLoss(s: HandBuilt, feats: tf.Tensor2D[], adapters: LM4LVAdapters): { ce: number; mse: number } {
  const x = assembleInputsEmbedsSync(lm, s, feats, adapters);
  const out = lm.forwardSync({ inputsEmbeds: x });
  const [, T, V] = out.logits.shape;
  const logits = out.logits.dataSync();
  const hidden = out.lastHiddenState.dataSync();
  let ceSum = 0;
  let ceCount = 0;
  for (let t = 0; t + 1 < T; t++) {
    const label = s.labels[t + 1];
    if (label === -100) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[t * V + v] - max);
    ceSum += max + Math.log(z) - logits[t * V + label];
    ceCount++;
  }
  const W = adapters.deAdapterWeight.dataSync();
  const b = adapters.deAdapterBias.dataSync();
  const featData = feats.map((f) => f.dataSync());
  let seSum = 0;
  for (const vt of s.visionTargets) {
    for (let o = 0; o < DV; o++) {
      let pred = b[o];
      for (let i = 0; i < 64; i++) pred += W[o * 64 + i] * hidden[vt.position * 64 + i];
      seSum += (pred - featData[vt.imageIndex][vt.tokenIndex * DV + o]) ** 2;
    }
  }
  return { ce: ceSum / ceCount, mse: seSum / (s.visionTargets.length * DV) };
}

describe("lm4lvLoss", () => {
  it("equals a direct float64 computation on the tiny Llama", () => {
    const adapters = newAdapters(4, true);
    const s = handBuiltSample(N, K);
    const feats = randomFeatures(2, N, DV, 9);
    const { loss, ce, mse } = lm4lvForwardLoss(lm, adapters, [{ seq: s, imageFeatures: feats }]);
    const expected = directLoss(s, feats, adapters);
    expect(s.labels.filter((l) => l !== -100).length).toBe(5);
    expect(ce.dataSync()[0]).toBeCloseTo(expected.ce, 4);
    expect(Math.abs(ce.dataSync()[0] - expected.ce) / expected.ce).toBeLessThan(1e-5);
    expect(Math.abs(mse.dataSync()[0] - expected.mse) / expected.mse).toBeLessThan(1e-5);
    expect(Math.abs(loss.dataSync()[0] - (expected.ce + expected.mse)) / (expected.ce + expected.mse)).toBeLessThan(1e-5);
  });

  it("averages over every labelled position and element of a batch", () => {
    const adapters = newAdapters(4, true);
    const s0 = handBuiltSample(N, K, 0);
    const s1 = handBuiltSample(N, K, 7);
    const f0 = randomFeatures(2, N, DV, 9);
    const f1 = randomFeatures(2, N, DV, 10);
    const batch = lm4lvForwardLoss(lm, adapters, [{ seq: s0, imageFeatures: f0 }, { seq: s1, imageFeatures: f1 }]);
    const d0 = directLoss(s0, f0, adapters);
    const d1 = directLoss(s1, f1, adapters);
    // Same number of labels and targets per sample: the batch mean is the mean of the two.
    expect(Math.abs(batch.ce.dataSync()[0] - (d0.ce + d1.ce) / 2)).toBeLessThan(1e-4);
    expect(Math.abs(batch.mse.dataSync()[0] - (d0.mse + d1.mse) / 2)).toBeLessThan(1e-4);
  });

  it("gives 0 (not NaN) for a term with nothing to average, and checks its inputs", () => {
    const adapters = newAdapters(1);
    const logits = tf.zeros([1, 3, 8]) as tf.Tensor3D;
    const hidden = tf.zeros([1, 3, 64]) as tf.Tensor3D;
    const r = lm4lvLoss({ logits, lastHiddenState: hidden, samples: [{ labels: [-100, -100, -100], visionTargets: [] }], targets: [[]], adapters });
    expect([r.loss, r.ce, r.mse].map((x) => x.dataSync()[0])).toEqual([0, 0, 0]);
    const uniform = lm4lvLoss({ logits, lastHiddenState: hidden, samples: [{ labels: [-100, 3, 5], visionTargets: [] }], targets: [[]], adapters });
    expect(uniform.ce.dataSync()[0]).toBeCloseTo(Math.log(8), 6);
    expect(() => lm4lvLoss({ logits, lastHiddenState: hidden, samples: [{ labels: [-100, 9, -100], visionTargets: [] }], targets: [[]], adapters })).toThrow(/label 9 at position 1 is outside the vocabulary \[0, 8\)/);
    expect(() => lm4lvLoss({ logits, lastHiddenState: hidden, samples: [{ labels: [-100, -100], visionTargets: [] }], targets: [[]], adapters })).toThrow(/2 labels, the sequence has 3/);
    expect(() =>
      lm4lvLoss({ logits, lastHiddenState: hidden, samples: [{ labels: [-100, -100, -100], visionTargets: [{ position: 1, imageIndex: 0, tokenIndex: 4 }] }], targets: [randomFeatures(1, 4, DV, 1)], adapters }),
    ).toThrow(/token 4 of image 0 is outside \[0, 4\)/);
  });
});

describe("gradients", () => {
  it("reach exactly the adapter variables (incl. task tokens); the LLM has none", () => {
    const adapters = newAdapters(6); // task tokens start at zero, as in training
    const s = handBuiltSample(N, K);
    const feats = randomFeatures(2, N, DV, 3);
    // No variable list: tf.js differentiates with respect to every trainable variable it knows.
    const { value, grads } = tf.variableGrads(() => lm4lvForwardLoss(lm, adapters, [{ seq: s, imageFeatures: feats }]).loss);
    const mine = Object.fromEntries(Object.entries(adapters.namedVariables()).map(([name, v]) => [v.name, name]));
    expect(Object.keys(grads).map((k) => mine[k]).sort()).toEqual(["adapter.bias", "adapter.weight", "de_adapter.bias", "de_adapter.weight", "task_tokens"]);
    for (const [k, g] of Object.entries(grads)) {
      expect(g.abs().max().dataSync()[0], `${mine[k]} gradient`).toBeGreaterThan(1e-6);
    }
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    expect(Object.keys(tf.engine().registeredVariables).every((name) => name.startsWith("lm4lv_adapters_"))).toBe(true);
    expect([...lm.namedParameters().values()].some((t) => t instanceof tf.Variable)).toBe(false);

    // The de-adapter bias gradient has a closed form: 2/(K·Dv) Σ_k (pred_k − target_k).
    const out = lm.forwardSync({ inputsEmbeds: assembleInputsEmbedsSync(lm, s, feats, adapters) });
    const rows = tf.gather(out.lastHiddenState.reshape([-1, 64]), s.visionTargets.map((v) => v.position));
    const diff = adapters.deAdapt(rows).sub(tf.gather(feats[1], s.visionTargets.map((v) => v.tokenIndex)));
    const expected = diff.sum(0).mul(2 / (s.visionTargets.length * DV)).dataSync();
    const got = grads[adapters.deAdapterBias.name].dataSync();
    for (let o = 0; o < DV; o++) expect(Math.abs(got[o] - expected[o])).toBeLessThan(1e-5);
  });

  it("do not reach task tokens when the sequence has no task span", () => {
    const adapters = newAdapters(6);
    const s = handBuiltSample(N, K);
    const noTask = { ...s, spans: s.spans.filter((sp) => sp.kind !== "task") };
    const feats = randomFeatures(2, N, DV, 3);
    const { grads } = tf.variableGrads(() => lm4lvForwardLoss(lm, adapters, [{ seq: noTask, imageFeatures: feats }]).loss, adapters.variables());
    const g = grads[adapters.taskTokens.name];
    expect(g === undefined || g.abs().max().dataSync()[0] === 0).toBe(true);
    expect(grads[adapters.adapterWeight.name].abs().max().dataSync()[0]).toBeGreaterThan(1e-6);
  });
});
