import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, readSafetensors, writeSafetensors } from "@lm4lv/core";
import type { LoadedTensor } from "@lm4lv/core";
import { LlamaForCausalLM } from "./model.js";
import { llamaPreset } from "./config.js";
import { llamaWeightTable } from "./weights.js";
import { LLAMA_TINY_DIR as FIXTURE } from "./testing.js";

describe("checked weight loading", () => {
  let root: string;
  let tensors: Record<string, LoadedTensor>;
  let config: Record<string, unknown>;
  beforeAll(async () => {
    await initBackend("cpu");
    root = mkdtempSync(join(tmpdir(), "lm4lv-llm-load-"));
    tensors = readSafetensors(FIXTURE).tensors;
    config = JSON.parse(readFileSync(join(FIXTURE, "config.json"), "utf8"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A copy of the fixture with tensors changed and config fields overridden. */
  function variant(name: string, edit: (t: Record<string, LoadedTensor>) => void, configOverrides: Record<string, unknown> = {}): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const t = { ...tensors };
    edit(t);
    writeSafetensors(join(dir, "model.safetensors"), t);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...configOverrides }));
    return dir;
  }

  it("the table lists every HF tensor of the fixture with its shape", () => {
    const table = llamaWeightTable(llamaPreset("tiny"));
    expect(table.map((s) => s.name).sort()).toEqual(Object.keys(tensors).sort());
    for (const s of table) expect(s.shape).toEqual(tensors[s.name].shape);
  });

  it("names a missing tensor with its expected shape", () => {
    const dir = variant("missing", (t) => delete t["model.layers.1.mlp.up_proj.weight"]);
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/missing 1 tensor\(s\): model\.layers\.1\.mlp\.up_proj\.weight \[160,64\]/);
  });

  it("names a wrong shape with expected and found shapes", () => {
    const dir = variant("shape", (t) => {
      t["model.layers.0.self_attn.k_proj.weight"] = { dtype: "F32", shape: [64, 64], data: new Float32Array(64 * 64) };
    });
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/model\.layers\.0\.self_attn\.k_proj\.weight: expected shape \[32,64\], found \[64,64\]/);
  });

  it("names unexpected tensors; ignores rotary inv_freq", () => {
    const dir = variant("unexpected", (t) => {
      t["model.layers.2.input_layernorm.weight"] = { dtype: "F32", shape: [64], data: new Float32Array(64) };
      t["model.layers.0.self_attn.rotary_emb.inv_freq"] = { dtype: "F32", shape: [8], data: new Float32Array(8) };
    });
    const err = (() => { try { LlamaForCausalLM.fromPretrained(dir); } catch (e) { return (e as Error).message; } return ""; })();
    expect(err).toMatch(/unexpected 1 tensor\(s\): model\.layers\.2\.input_layernorm\.weight/);
    expect(err).not.toMatch(/inv_freq/);
    expect(err).toContain(join(dir, "model.safetensors"));
  });

  it("an untied config needs lm_head.weight; a tied one uses the embeddings (and ignores a stored lm_head)", () => {
    const noHead = variant("nohead", (t) => delete t["lm_head.weight"]);
    expect(() => LlamaForCausalLM.fromPretrained(noHead)).toThrow(/missing 1 tensor\(s\): lm_head\.weight \[256,64\]/);
    const tied = variant("tied", (t) => delete t["lm_head.weight"], { tie_word_embeddings: true });
    const tiedWithHead = variant("tiedhead", () => {}, { tie_word_embeddings: true });
    const ids = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
    const [a, b] = [tied, tiedWithHead].map((d) => LlamaForCausalLM.fromPretrained(d));
    const [la, lb] = [a, b].map((m) => m.forwardSync({ inputIds: ids }));
    // logits = h · Eᵀ
    const expected = tf.matMul(la.lastHiddenState.reshape([3, 64]), tf.tensor2d(tensors["model.embed_tokens.weight"].data as Float32Array, [256, 64]), false, true);
    expect(Math.max(...tf.sub(la.logits.reshape([3, 256]), expected).abs().dataSync())).toBeLessThan(1e-5);
    expect(Array.from(lb.logits.dataSync())).toEqual(Array.from(la.logits.dataSync()));
    a.dispose();
    b.dispose();
  });

  it("a non-float tensor is reported with its dtype", () => {
    const dir = variant("dtype", (t) => {
      t["model.norm.weight"] = { dtype: "I32", shape: [64], data: new Int32Array(64) };
    });
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/model\.norm\.weight: expected a floating dtype \(F32\/F16\/BF16\), found I32/);
  });

  it("a bad config is reported with its field", () => {
    const dir = join(root, "badconfig");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(FIXTURE, "model.safetensors"), join(dir, "model.safetensors"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, num_key_value_heads: 3 }));
    expect(() => LlamaForCausalLM.fromPretrained(dir)).toThrow(/config\.json: num_key_value_heads: must divide num_attention_heads \(4\), got 3/);
  });

  it("loading leaves exactly one tensor per weight alive", () => {
    const before = tf.memory().numTensors;
    const lm = LlamaForCausalLM.fromPretrained(FIXTURE);
    expect(tf.memory().numTensors - before).toBe(Object.keys(tensors).length);
    lm.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
