import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { bf16ToF32, f16ToF32, f32ToBF16, f32ToF16, initBackend, readSafetensors, transpose2d, writeSafetensors } from "@lm4lv/core";
import type { SafetensorsDtype, TensorToWrite } from "@lm4lv/core";
import { LlamaForCausalLM, llamaWeightTable } from "@lm4lv/llm";
import { exportOnnx, loadOrtModels } from "./export.js";
import { buildLlamaStep } from "./llama-export.js";
import { openLlamaSource } from "./llama-source.js";
import type { LlamaWeightSource } from "./llama-source.js";
import { maxAbsDiff, tempDir } from "@lm4lv/core/testing";
import { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";

let dir: string;
let sharded: string;
/** The fixture's tensors as the sharded folder stores them, widened back to float32 here. */
const expected = new Map<string, Float32Array>();

/**
 * The llama_tiny weights as three shards with model.safetensors.index.json: the embedding and
 * layer 0 in F16, layer 1 in BF16, the rest (final norm, lm_head) in F32.
 */
function writeShardedFixture(out: string): void {
  mkdirSync(out, { recursive: true });
  copyFileSync(join(LLAMA_TINY, "config.json"), join(out, "config.json"));
  const { tensors } = readSafetensors(join(LLAMA_TINY, "model.safetensors"));
  const shards: Record<string, Record<string, TensorToWrite>> = {};
  const weightMap: Record<string, string> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const data = t.data as Float32Array;
    let dtype: SafetensorsDtype = "F32";
    if (name.startsWith("model.embed_tokens") || name.startsWith("model.layers.0.")) dtype = "F16";
    else if (name.startsWith("model.layers.1.")) dtype = "BF16";
    const file = `model-0000${dtype === "F16" ? 1 : dtype === "BF16" ? 2 : 3}-of-00003.safetensors`;
    (shards[file] ??= {})[name] = { shape: t.shape, data, dtype };
    weightMap[name] = file;
    expected.set(name, dtype === "F16" ? f16ToF32(f32ToF16(data)) : dtype === "BF16" ? bf16ToF32(f32ToBF16(data)) : data);
  }
  for (const [file, ts] of Object.entries(shards)) writeSafetensors(join(out, file), ts, { format: "pt" });
  writeFileSync(join(out, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
}

beforeAll(async () => {
  await initBackend("cpu");
  dir = tempDir("onnx-stream");
  sharded = join(dir, "sharded");
  writeShardedFixture(sharded);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Wraps a source to record every read (our own object, not ONNX Runtime). */
function recording(src: LlamaWeightSource, log: string[]): LlamaWeightSource {
  return {
    config: src.config,
    invFreq: src.invFreq,
    tensor: (name) => (log.push(name), src.tensor(name)),
    kernel: (name) => (log.push(`kernel:${name}`), src.kernel(name)),
    close: () => src.close(),
  };
}

describe("streaming Llama export from safetensors", () => {
  it("reads sharded F16 / BF16 / F32 tensors lazily, widened exactly, kernels transposed", async () => {
    const src = openLlamaSource(sharded);
    try {
      for (const spec of llamaWeightTable(src.config)) {
        expect(src.tensor(spec.name), spec.name).toEqual(expected.get(spec.name));
        if (spec.role === "linear") expect(src.kernel(spec.name)).toEqual(transpose2d(expected.get(spec.name)!, spec.shape[0], spec.shape[1]));
      }
      expect(() => src.tensor("model.layers.9.mlp.up_proj.weight")).toThrow(/"model\.layers\.9\.mlp\.up_proj\.weight" is not a weight of this Llama config/);
    } finally {
      src.close();
    }
  });

  it("reads nothing while building and each weight once, one at a time, while writing", async () => {
    const log: string[] = [];
    const src = recording(openLlamaSource(sharded), log);
    try {
      const g = buildLlamaStep(src, { weights: "int4" });
      expect(log).toEqual([]);
      g.save(join(dir, "int4_step.onnx"), { externalAbove: 1024 });
      // the step graph holds every weight but the embedding table (the LM head is not tied here)
      const names = llamaWeightTable(src.config).map((s) => s.name).filter((n) => n !== "model.embed_tokens.weight");
      expect([...log].sort()).toEqual([...names].sort());
      expect(new Set(log).size).toBe(log.length);
    } finally {
      src.close();
    }
  });

  it("exports a sharded folder without loading the model and matches the tfjs model of the same folder", async () => {
    const out = join(dir, "export");
    const m = exportOnnx(sharded, out, { externalAbove: 4096 });
    expect(Object.keys(m.files).sort()).toEqual(["embed", "llmStep"]);
    const lm = LlamaForCausalLM.fromPretrained(sharded); // the independent reader: tfjs, loaded whole
    const models = await loadOrtModels(out, { intraOpThreads: 1 });
    const ids = tf.tensor2d([[1, 5, 9, 200, 17, 3]], [1, 6], "int32");
    const a = await models.lm!.forward({ inputIds: ids });
    const b = lm.forwardSync({ inputIds: ids });
    expect(maxAbsDiff(a.logits.dataSync(), b.logits.dataSync())).toBeLessThan(1e-4);
    // the same graph built from the loaded model holds the same bytes
    const fromModel = exportOnnx({ llm: lm }, join(dir, "export-model"), { externalAbove: 4096 });
    expect(fromModel.llm).toEqual(m.llm);
    const models2 = await loadOrtModels(join(dir, "export-model"), { intraOpThreads: 1 });
    const c = await models2.lm!.forward({ inputIds: ids });
    expect(maxAbsDiff(a.logits.dataSync(), c.logits.dataSync())).toBe(0);
    models.dispose();
    models2.dispose();
    lm.dispose();
    tf.dispose([ids, a.logits, a.lastHiddenState, b.logits, b.lastHiddenState, c.logits, c.lastHiddenState]);
  });

  it("names a missing tensor and a wrong shape before reading anything", async () => {
    const broken = join(dir, "broken");
    writeShardedFixture(broken);
    const { tensors } = readSafetensors(join(broken, "model-00003-of-00003.safetensors"));
    const { "lm_head.weight": _dropped, ...rest } = tensors;
    writeSafetensors(join(broken, "model-00003-of-00003.safetensors"), Object.fromEntries(Object.entries(rest).map(([k, t]) => [k, { shape: t.shape, data: t.data }])));
    const index = { weight_map: Object.fromEntries([...expected.keys()].filter((k) => k !== "lm_head.weight").map((k) => [k, k.startsWith("model.embed_tokens") || k.startsWith("model.layers.0.") ? "model-00001-of-00003.safetensors" : k.startsWith("model.layers.1.") ? "model-00002-of-00003.safetensors" : "model-00003-of-00003.safetensors"])) };
    writeFileSync(join(broken, "model.safetensors.index.json"), JSON.stringify(index));
    expect(() => openLlamaSource(broken)).toThrow(/missing 1 tensor\(s\): lm_head\.weight \[256,64\]/);
    expect(() => openLlamaSource(join(dir, "nowhere"))).toThrow(/nowhere/);
  });
});
