import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@lm4lv/core";
import { LM4LV, loadModels } from "./lm4lv.js";
import { withOrtEngine } from "./engine.js";
import { writeTinyModels, syntheticPhoto } from "./testing.js";

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
});
