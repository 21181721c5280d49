import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { FolderPairDataset } from "@lm4lv/data";
import { LM4LV, loadModels, trainLM4LV } from "@lm4lv/pipeline";
import type { LM4LVEngineRun, LM4LVGradientEngine } from "@lm4lv/pipeline";
import { syntheticPhoto, writeSyntheticPhotos, writeTinyModels } from "@lm4lv/pipeline/testing";
import { ortLM4LVGradients } from "./lm4lv-training.js";

const root = mkdtempSync(join(tmpdir(), "lm4lv-onnx-lm4lv-train-"));
let models: Awaited<ReturnType<typeof loadModels>>;
let photos: string;

beforeAll(async () => {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  const dirs = writeTinyModels(root);
  models = await loadModels({ mae: dirs.maeDir, llm: dirs.llmDir });
  photos = join(root, "photos");
  await writeSyntheticPhotos(photos, 6, 16);
});

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
};

describe("ortLM4LVGradients (the ORT engine of trainLM4LV)", () => {
  it("gives LM4LV.loss and its adapter / task-token gradients (tfjs autodiff), encoding each distinct image once", async () => {
    const model = LM4LV.create(models, { seed: 5 });
    // make the zero-initialised task tokens non-trivial
    model.adapters.namedVariables().task_tokens.assign(tf.randomNormal([model.adapters.numTaskTokens, models.lm.hiddenSize], 0, 0.5, "float32", 9));
    const pairs = [0, 1].map((k) => ({ lq: syntheticPhoto(16, k), hq: syntheticPhoto(16, k + 10) }));
    const engine = await ortLM4LVGradients(model, { threads: 1 });
    try {
      expect(engine.name).toBe("onnxruntime");
      const out = await engine.gradients(pairs);
      let parts: number[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const r = model.loss(pairs);
        parts = [r.ce.dataSync()[0], r.mse.dataSync()[0]];
        return r.loss;
      }, model.adapters.variables());
      expect(Math.abs(out.loss - value.dataSync()[0]) / value.dataSync()[0]).toBeLessThan(1e-4);
      expect(out.parts?.ce).toBeCloseTo(parts[0], 3);
      expect(out.parts?.mse).toBeCloseTo(parts[1], 3);
      for (const [name, v] of Object.entries(model.adapters.namedVariables())) expect(relErr(out.grads[name], grads[v.name].dataSync()), name).toBeLessThan(1e-3);
      tf.dispose([value, ...Object.values(grads)]);
      // the same pairs again: all four images come from the cache
      await engine.gradients(pairs);
      expect(engine.cache.stats).toMatchObject({ misses: 4, hits: 4, entries: 4 });
    } finally {
      await engine.release();
      model.adapters.dispose();
    }
  });

  it("ORT engine: the first 4 step losses match tfjs, resume is exact, metrics.jsonl has one line per step", async () => {
    const ds = new FolderPairDataset(photos, "denoise", { size: 16, seed: 0 });
    const common = { train: ds, steps: 4, batchSize: 2, lr: 3e-3, seed: 0, checkpointEvery: 100, progress: false, handleSigint: false } as const;
    const ort = { engine: "ort", gradients: ortLM4LVGradients, threads: 1 } as const;
    const rt = await trainLM4LV({ ...common, model: LM4LV.create(models, { seed: 5 }), outDir: join(root, "eng-tfjs"), engine: "tfjs" });
    const mo = LM4LV.create(models, { seed: 5 });
    const ro = await trainLM4LV({ ...common, model: mo, outDir: join(root, "eng-ort"), ...ort });
    rt.history.forEach((h, i) => expect(Math.abs(ro.history[i].loss - h.loss) / h.loss).toBeLessThan(1e-3));
    const lines = readFileSync(join(root, "eng-ort", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    for (const l of lines) for (const k of ["loss", "lr", "ms", "ce", "mse"]) expect(typeof l[k]).toBe("number");

    // stopped after 2 steps, resumed to 4 on ORT: the same adapters as the run above
    const ctl = new AbortController();
    let n = 0;
    const out = join(root, "eng-ort-resume");
    await trainLM4LV({ ...common, model: LM4LV.create(models, { seed: 5 }), outDir: out, ...ort, signal: ctl.signal, onStep: () => { if (++n === 2) ctl.abort(); } });
    const mr = LM4LV.create(models, { seed: 77 });
    const rr = await trainLM4LV({ ...common, model: mr, outDir: out, ...ort, resume: true });
    expect(rr.step).toBe(4);
    for (const name of ["adapter.weight", "de_adapter.weight", "task_tokens"] as const) {
      expect(Array.from(mr.adapters.namedVariables()[name].dataSync())).toEqual(Array.from(mo.adapters.namedVariables()[name].dataSync()));
    }
    expect(readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step)).toEqual([1, 2, 3, 4]);
  });

  it("a tiled model (tiles: 2) trains on ORT with the tfjs engine's losses: each image pair is four pairs of tiles", async () => {
    const ds = new FolderPairDataset(photos, "denoise", { size: 32, seed: 0 });
    const common = { train: ds, steps: 3, batchSize: 1, lr: 3e-3, seed: 0, checkpointEvery: 100, progress: false, handleSigint: false } as const;
    const rt = await trainLM4LV({ ...common, model: LM4LV.create(models, { seed: 6, tiles: 2 }), outDir: join(root, "tiled-tfjs"), engine: "tfjs" });
    let engineCache: { stats: { misses: number } } | undefined;
    const gradients: LM4LVGradientEngine = async (m, run) => {
      const e = await ortLM4LVGradients(m, run);
      engineCache = e.cache;
      return e;
    };
    const ro = await trainLM4LV({ ...common, model: LM4LV.create(models, { seed: 6, tiles: 2 }), outDir: join(root, "tiled-ort"), engine: "ort", gradients, threads: 1 });
    rt.history.forEach((h, i) => expect(Math.abs(ro.history[i].loss - h.loss) / h.loss).toBeLessThan(1e-3));
    expect(engineCache?.stats.misses).toBe(3 * 8); // 3 steps × (4 LQ + 4 HQ tiles), all distinct
  });

  it("trainLM4LV runs the engine given as `gradients` (engine \"ort\" when left out) and needs one for engine \"ort\"", async () => {
    const ds = new FolderPairDataset(photos, "denoise", { size: 16, seed: 0 });
    const common = { train: ds, steps: 1, batchSize: 2, progress: false, handleSigint: false } as const;
    const built: LM4LVEngineRun[] = [];
    const gradients: LM4LVGradientEngine = (m, run) => (built.push(run), ortLM4LVGradients(m, run));
    const r = await trainLM4LV({ ...common, model: LM4LV.create(models, { seed: 5 }), outDir: join(root, "implicit"), gradients, threads: 1 });
    expect([r.status, r.step]).toEqual(["completed", 1]);
    expect(built).toEqual([{ threads: 1, inputNoise: false }]);
    await expect(trainLM4LV({ ...common, model: LM4LV.create(models, { seed: 5 }), outDir: join(root, "missing"), engine: "ort" })).rejects.toThrow(
      'trainLM4LV: engine "ort" needs its gradient engine as `gradients` (ortLM4LVGradients of @lm4lv/onnx)',
    );
  });
});
