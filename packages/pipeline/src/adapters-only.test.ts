import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@lm4lv/core";
import { FolderPairDataset } from "@lm4lv/data";
import { LM4LV, loadModels } from "./lm4lv.js";
import { adaptersOnlyLoss, restoreAdaptersOnly, trainAdaptersOnly } from "./adapters-only.js";
import { writeTinyModels, writeSyntheticPhotos, syntheticPhoto } from "./testing.js";

const root = mkdtempSync(join(tmpdir(), "lm4lv-ao-"));
let model: LM4LV;

beforeAll(async () => {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  const dirs = writeTinyModels(root);
  model = LM4LV.create(await loadModels({ mae: dirs.maeDir, llm: dirs.llmDir }), { seed: 4 });
  await writeSyntheticPhotos(join(root, "photos"), 4, 16);
});

describe("adapters-only ablation", () => {
  it("its loss is the MSE of the two linear maps applied to the LQ features", async () => {
    const pair = { lq: syntheticPhoto(16, 0), hq: syntheticPhoto(16, 1) };
    const got = adaptersOnlyLoss(model, [pair]).dataSync()[0];
    const lq = (await model.encode([pair.lq])).arraySync()[0];
    const hq = (await model.encode([pair.hq])).arraySync()[0];
    const v = model.adapters.namedVariables();
    const W1 = v["adapter.weight"].arraySync() as number[][], b1 = v["adapter.bias"].arraySync() as number[];
    const W2 = v["de_adapter.weight"].arraySync() as number[][], b2 = v["de_adapter.bias"].arraySync() as number[];
    let acc = 0, n = 0;
    for (let t = 0; t < lq.length; t++) {
      const h = W1.map((row, i) => row.reduce((a, w, k) => a + w * lq[t][k], b1[i]));
      const f = W2.map((row, j) => row.reduce((a, w, k) => a + w * h[k], b2[j]));
      f.forEach((x, j) => { acc += (x - hq[t][j]) ** 2; n++; });
    }
    expect(Math.abs(got - acc / n) / (acc / n)).toBeLessThan(1e-4);
  });

  it("training lowers the loss and restores images of the MAE's size", async () => {
    const ds = new FolderPairDataset(join(root, "photos"), "denoise", { size: 16 });
    const r = await trainAdaptersOnly({ model, train: ds, outDir: join(root, "ao"), steps: 10, batchSize: 2, lr: 1e-2, progress: false, handleSigint: false });
    expect(r.history[9].loss).toBeLessThan(r.history[0].loss);
    const img = await restoreAdaptersOnly(model, syntheticPhoto(16, 2));
    expect([img.width, img.height]).toEqual([16, 16]);
    expect(tf.memory().numTensors).toBeLessThan(1000);
  });
});
