/**
 * The model's parameters seen from outside: HF names and layout (`namedParameters`), trainable
 * variables (`trainableParameters`), a model from a state dict (`fromParameters`) and views with
 * weight deltas (`withWeightDeltas`, what LoRA uses).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend, SafetensorsFile } from "@lm4lv/core";
import { LlamaForCausalLM } from "./model.js";
import { maxAbsDiff as maxDiff } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as FIXTURE } from "./testing.js";

const IDS = [[1, 5, 9, 200, 17, 3, 88]];

let lm: LlamaForCausalLM;
beforeAll(async () => {
  await initBackend("cpu");
  lm = LlamaForCausalLM.fromPretrained(FIXTURE);
});
afterAll(() => lm?.dispose());

const logits = (m: LlamaForCausalLM) => tf.tidy(() => m.forwardSync({ inputIds: tf.tensor2d(IDS, undefined, "int32") }).logits.dataSync() as Float32Array);

describe("LlamaForCausalLM parameters", () => {
  it("namedParameters: the checkpoint's names, shapes and values (HF layout), in its order", () => {
    const file = SafetensorsFile.open(`${FIXTURE}/model.safetensors`);
    const named = lm.namedParameters();
    expect([...named.keys()].sort()).toEqual(file.keys().filter((k) => !k.endsWith("inv_freq")).sort());
    expect([...named.keys()][0]).toBe("model.embed_tokens.weight");
    for (const [name, t] of named) {
      expect(t.shape, name).toEqual(file.entry(name).shape);
      expect(maxDiff(t.dataSync(), file.readFloat32(name)), name).toBe(0);
      expect(t).not.toBeInstanceOf(tf.Variable);
    }
    file.close();
    expect(lm.parameterCount()).toBe([...named.values()].reduce((n, t) => n + t.size, 0));
  });

  it("readParameter gives the same values without keeping anything; namedParameters keeps one HF copy per frozen Linear weight", () => {
    const m = LlamaForCausalLM.fromPretrained(FIXTURE);
    const before = tf.memory().numTensors;
    const q = m.readParameter("model.layers.0.self_attn.q_proj.weight");
    expect(tf.memory().numTensors).toBe(before);
    const named = m.namedParameters();
    const linears = [...named.keys()].filter((n) => /_proj\.weight$|lm_head\.weight$/.test(n)).length;
    expect(tf.memory().numTensors).toBe(before + linears);
    expect(q.shape).toEqual(named.get("model.layers.0.self_attn.q_proj.weight")!.shape);
    expect(maxDiff(q.data, named.get("model.layers.0.self_attn.q_proj.weight")!.dataSync())).toBe(0);
    m.namedParameters();
    expect(tf.memory().numTensors).toBe(before + linears); // kept, not made again
    m.dispose();
    expect(tf.memory().numTensors).toBe(before - named.size);
  });

  it("fromParameters copies a state dict (same logits), and names what does not match", () => {
    const copy = LlamaForCausalLM.fromParameters(lm.config, lm.namedParameters());
    expect(maxDiff(logits(copy), logits(lm))).toBe(0);
    copy.dispose();
    expect(lm.namedParameters().get("model.norm.weight")!.isDisposed).toBe(false); // the caller's tensors stay
    const broken = new Map(lm.namedParameters());
    broken.delete("model.norm.weight");
    broken.set("model.layers.0.mlp.up_proj.weight", tf.zeros([3, 3]));
    broken.set("extra.weight", tf.zeros([1]));
    const bad = () => LlamaForCausalLM.fromParameters(lm.config, broken);
    expect(bad).toThrow(/missing model\.norm\.weight \[64\]/);
    expect(bad).toThrow(/up_proj\.weight: expected shape \[160,64\], got \[3,3\]/);
    expect(bad).toThrow(/unexpected extra\.weight/);
  });

  it("trainableParameters: HF-layout variables the forward computes with (same logits, gradients reach them)", () => {
    const m = LlamaForCausalLM.fromParameters(lm.config, lm.namedParameters());
    const vars = m.trainableParameters((n) => n.startsWith("model.layers.1.") || n === "model.norm.weight");
    expect(Object.keys(vars)).toContain("model.layers.1.self_attn.q_proj.weight");
    expect(Object.keys(vars)).not.toContain("model.layers.0.self_attn.q_proj.weight");
    expect(vars["model.layers.1.mlp.down_proj.weight"].shape).toEqual(lm.namedParameters().get("model.layers.1.mlp.down_proj.weight")!.shape);
    expect(m.namedParameters().get("model.layers.1.self_attn.q_proj.weight")).toBe(vars["model.layers.1.self_attn.q_proj.weight"]);
    expect(maxDiff(logits(m), logits(lm))).toBe(0); // the transposed variable gives the same kernel
    const ids = tf.tensor2d(IDS, undefined, "int32");
    const { value, grads } = tf.variableGrads(() => tf.mean(m.forwardSync({ inputIds: ids }).logits) as tf.Scalar, Object.values(vars));
    const q = grads[vars["model.layers.1.self_attn.q_proj.weight"].name];
    expect(q.shape).toEqual(vars["model.layers.1.self_attn.q_proj.weight"].shape);
    expect(tf.max(tf.abs(q)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([ids, value, ...Object.values(grads)]);
    m.dispose();
  });

  it("withWeightDeltas computes with W + Δ (HF layout), shares the weights and owns none", () => {
    const name = "model.layers.0.self_attn.v_proj.weight";
    const W = lm.namedParameters().get(name)!;
    const delta = tf.randomNormal(W.shape, 0, 0.05, "float32", 3);
    const view = lm.withWeightDeltas((n) => (n === name ? delta : undefined));
    const merged = new Map(lm.namedParameters());
    merged.set(name, tf.add(W, delta));
    const reference = LlamaForCausalLM.fromParameters(lm.config, merged);
    expect(maxDiff(logits(view), logits(reference))).toBeLessThan(1e-5);
    expect(maxDiff(logits(view), logits(lm))).toBeGreaterThan(1e-3);
    const zero = lm.withWeightDeltas(() => undefined);
    expect(maxDiff(logits(zero), logits(lm))).toBe(0);
    view.dispose();
    zero.dispose();
    expect(maxDiff(logits(lm), logits(reference))).toBeGreaterThan(1e-3); // the base still works after its views are gone
    reference.dispose();
    tf.dispose([delta, merged.get(name)!]);
  });
});
