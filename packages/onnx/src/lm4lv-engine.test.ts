import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, existsSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@lm4lv/core";
import { LM4LV, loadModels } from "@lm4lv/pipeline";
import { writeTinyModels, syntheticPhoto } from "@lm4lv/pipeline/testing";
import { OrtCausalLM, OrtVisionModel } from "./runtime.js";
import { loadOrtLM4LV, withOrtEngine } from "./lm4lv-engine.js";
import { readManifest } from "./export.js";

const root = mkdtempSync(join(tmpdir(), "lm4lv-engine-"));
let model: LM4LV;
const ckpt = join(root, "ckpt");

beforeAll(async () => {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  const dirs = writeTinyModels(join(root, "models"));
  model = LM4LV.create(await loadModels({ mae: dirs.maeDir, llm: dirs.llmDir }), { seed: 8 });
  model.save(ckpt, 0);
});

describe("ONNX Runtime engine", () => {
  it.each(["folded", "step"] as const)("restores the same image as tfjs (%s loop), within 1/255", async (loop) => {
    const { model: ort, exported, cacheDir } = await withOrtEngine(model, ckpt, { loop, cacheDir: join(root, `onnx-${loop}`) });
    expect(exported).toBe(true);
    expect(existsSync(join(cacheDir, "manifest.json")) || existsSync(cacheDir)).toBe(true);
    expect(ort.engineName).toBe("onnxruntime");
    const lq = syntheticPhoto(16, 4);
    const a = await model.restore(lq);
    const b = await ort.restore(lq);
    const fa = a.features.dataSync(), fb = b.features.dataSync();
    let maxF = 0;
    for (let i = 0; i < fa.length; i++) maxF = Math.max(maxF, Math.abs(fa[i] - fb[i]));
    expect(maxF).toBeLessThan(1e-4);
    let maxPx = 0;
    for (let i = 0; i < a.image.data.length; i++) maxPx = Math.max(maxPx, Math.abs(Math.round(a.image.data[i] * 255) - Math.round(b.image.data[i] * 255)));
    expect(maxPx).toBeLessThanOrEqual(1);
    a.features.dispose();
    b.features.dispose();
    // cached: a second call reuses the export
    expect((await withOrtEngine(model, ckpt, { loop, cacheDir })).exported).toBe(false);
  });

  it("loads a checkpoint straight into ORT (no tfjs LM or MAE) and restores the same image as tfjs", async () => {
    const tfBytes = tf.memory().numBytes;
    const { model: ort, exported, dir } = await loadOrtLM4LV(ckpt, { cacheDir: join(root, "onnx-only") });
    expect(exported).toBe(true);
    expect(dir).toBe(join(root, "onnx-only"));
    // the frozen models are ONNX Runtime's: the process holds one copy of the LM weights
    expect(ort.models.lm).toBeInstanceOf(OrtCausalLM);
    expect(ort.models.vision).toBeInstanceOf(OrtVisionModel);
    // and tfjs holds the trained parameters only (adapters + task tokens), no copy of the MAE or the LM
    const trained = Object.values(ort.adapters.namedVariables()).reduce((n, v) => n + v.size * 4, 0);
    expect(tf.memory().numBytes - tfBytes).toBe(trained);
    const lq = syntheticPhoto(16, 6);
    const a = await model.restore(lq);
    const b = await ort.restore(lq);
    let maxPx = 0;
    for (let i = 0; i < a.image.data.length; i++) maxPx = Math.max(maxPx, Math.abs(Math.round(a.image.data[i] * 255) - Math.round(b.image.data[i] * 255)));
    expect(maxPx).toBeLessThanOrEqual(1);
    // --low-memory: the encoder's session is closed while the LM generates, and the image is the same
    const vision = ort.models.vision as OrtVisionModel;
    expect(vision.encoderOpen).toBe(true);
    const c = await ort.restore(lq, { releaseEncoder: true });
    expect(vision.encoderOpen).toBe(false);
    expect(Array.from(c.features.dataSync())).toEqual(Array.from(b.features.dataSync()));
    const d = await ort.restore(lq); // reopened by the next encode
    expect(vision.encoderOpen).toBe(true);
    expect(Array.from(d.features.dataSync())).toEqual(Array.from(b.features.dataSync()));
    tf.dispose([a.features, b.features, c.features, d.features]);
  });

  it("exports and loads the quantize setting asked for, each in its own folder, and names a bad one", async () => {
    const cacheDir = join(root, "onnx-q");
    const r = await loadOrtLM4LV(ckpt, { cacheDir, quantize: "int8" });
    expect(r.dir).toBe(join(cacheDir, "int8"));
    expect(existsSync(join(cacheDir, "int8", "manifest.json"))).toBe(true);
    expect(existsSync(join(cacheDir, "manifest.json"))).toBe(false); // fp32 not exported
    const out = await r.model.restore(syntheticPhoto(16, 3));
    expect([out.image.width, out.image.height]).toEqual([16, 16]);
    out.features.dispose();
    const w = await withOrtEngine(model, ckpt, { cacheDir, quantize: "int8" });
    expect([w.dir, w.exported]).toEqual([join(cacheDir, "int8"), false]); // the same cached export
    await expect(loadOrtLM4LV(ckpt, { cacheDir, quantize: "int2" as never })).rejects.toThrow(/quantize: expected one of fp32, fp16, int8, int4, got "int2"/);
  });

  it("exports int4 with blocks of 128 to <cacheDir>/int4-b128, and names a bad block size or a block size without int4", async () => {
    const cacheDir = join(root, "onnx-b128");
    const r = await loadOrtLM4LV(ckpt, { cacheDir, quantize: "int4", int4BlockSize: 128 });
    expect([r.dir, r.exported]).toEqual([join(cacheDir, "int4-b128"), true]);
    expect(readManifest(r.dir).weights).toMatchObject({ format: "int4", int4BlockSize: 128 });
    expect(existsSync(join(cacheDir, "int4"))).toBe(false); // the block-32 folder is another setting
    const out = await r.model.restore(syntheticPhoto(16, 3));
    expect([out.image.width, out.image.height]).toEqual([16, 16]);
    out.features.dispose();
    const w = await withOrtEngine(model, ckpt, { cacheDir, quantize: "int4", int4BlockSize: 128 });
    expect([w.dir, w.exported]).toEqual([join(cacheDir, "int4-b128"), false]); // the same cached export
    await expect(loadOrtLM4LV(ckpt, { cacheDir, quantize: "int4", int4BlockSize: 100 as never })).rejects.toThrow("int4BlockSize: expected one of 32, 64, 128, got 100");
    await expect(withOrtEngine(model, ckpt, { cacheDir, quantize: "int8", int4BlockSize: 64 })).rejects.toThrow('int4BlockSize: only with quantize "int4", got quantize "int8"');
  });
});
