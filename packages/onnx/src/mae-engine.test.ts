/**
 * `ortMaeGradients` as `trainMae`'s gradient engine: on a tiny random MAE and synthetic photos,
 * the first step losses of a run on ONNX Runtime match the same run on tfjs autodiff (every
 * stage), both write metrics.jsonl, and an ORT run stopped and resumed ends with the same bits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, Mulberry32, writeImage } from "@lm4lv/core";
import type { RgbImage } from "@lm4lv/core";
import { ViTMAE, trainMae, vitMAEPreset } from "@lm4lv/mae";
import type { MaeGradientEngine, MaeTrainOptions } from "@lm4lv/mae";
import { ortMaeGradients } from "./train-vit.js";

const CONFIG = vitMAEPreset("tiny", {
  image_size: 16, patch_size: 4, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,
  decoder_hidden_size: 16, decoder_num_hidden_layers: 1, decoder_num_attention_heads: 2, decoder_intermediate_size: 32,
});

const ort: MaeGradientEngine = (mae, variables, run) => ortMaeGradients(mae, variables, { ...run, threads: 1 });

/** A smooth random picture: a colour gradient plus a soft blob. */
function randomPicture(rng: Mulberry32, size: number): RgbImage {
  const u = () => rng.next();
  const data = new Float32Array(size * size * 3);
  const base = [0.3 + 0.3 * u(), 0.3 + 0.3 * u(), 0.3 + 0.3 * u()];
  const grad = [u() - 0.5, u() - 0.5, u() - 0.5];
  const blob = { x: u() * size, y: u() * size, r: 2 + u() * 4, c: [u(), u(), u()] };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const w = Math.exp(-((x - blob.x) ** 2 + (y - blob.y) ** 2) / (2 * blob.r * blob.r));
      for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = Math.min(1, Math.max(0, (base[c] + (grad[c] * (x + y)) / size) * (1 - w) + blob.c[c] * w));
    }
  }
  return { width: size, height: size, data };
}

let root: string;
let dataDir: string;

function options(out: string, extra: Partial<MaeTrainOptions>): MaeTrainOptions {
  return {
    stage: "pretrain", data: dataDir, out, config: CONFIG, steps: 4, batchSize: 4, lr: 5e-3, warmup: 2, seed: 1,
    checkpointEvery: 0, cropBorder: 0, samples: 0, progress: false, handleSigint: false, log: () => {}, ...extra,
  };
}

beforeAll(async () => {
  await initBackend("wasm");
  root = mkdtempSync(join(tmpdir(), "lm4lv-onnx-mae-engine-"));
  dataDir = join(root, "images");
  mkdirSync(dataDir);
  const rng = new Mulberry32(7);
  for (let i = 0; i < 12; i++) await writeImage(join(dataDir, `img${String(i).padStart(2, "0")}.png`), randomPicture(rng, 16));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("ortMaeGradients in trainMae", () => {
  /** Losses of the first steps and the metrics.jsonl lines of a short run on one engine. */
  async function shortRun(engine: "ort" | "tfjs", extra: Partial<MaeTrainOptions>): Promise<{ losses: number[]; metrics: { step: number; loss: number }[] }> {
    const out = join(root, `engine-${extra.stage ?? "pretrain"}-${engine}`);
    const losses: number[] = [];
    const r = await trainMae(options(out, { gradients: engine === "ort" ? ort : undefined, onStep: (e) => void losses.push(e.loss), ...extra }));
    expect(r.status).toBe("completed");
    r.model.dispose();
    const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { step: number; loss: number });
    return { losses, metrics };
  }

  function expectSameLosses(ort: number[], tfjs: number[]): void {
    expect(ort).toHaveLength(4);
    expect(tfjs).toHaveLength(4);
    tfjs.forEach((l, i) => expect(Math.abs(ort[i] - l) / l, `step ${i + 1}: ort ${ort[i]} vs tfjs ${l}`).toBeLessThan(1e-3));
    // the runs train: the steps do not all show the same loss
    expect(new Set(ort).size).toBeGreaterThan(1);
  }

  it("pre-training: the first 4 step losses match tfjs; both write metrics.jsonl", async () => {
    const tfjs = await shortRun("tfjs", {});
    const ort = await shortRun("ort", {});
    expectSameLosses(ort.losses, tfjs.losses);
    for (const run of [tfjs, ort]) expect(run.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(ort.metrics.map((m) => m.loss)).toEqual(ort.losses);
  });

  it("decoder fine-tuning: the first 4 step losses match tfjs", async () => {
    const init = join(root, "engine-init");
    const mae = ViTMAE.fromConfig(CONFIG, 5);
    mae.save(init);
    mae.dispose();
    const tfjs = await shortRun("tfjs", { stage: "finetune", init, config: undefined });
    const ort = await shortRun("ort", { stage: "finetune", init, config: undefined });
    expectSameLosses(ort.losses, tfjs.losses);
  });

  it("unmasked autoencoder training (encoder and decoder, L1): the first 4 step losses match tfjs", async () => {
    const tfjs = await shortRun("tfjs", { stage: "autoencode" });
    const ort = await shortRun("ort", { stage: "autoencode" });
    expectSameLosses(ort.losses, tfjs.losses);
  });

  it("a run on ORT interrupted and resumed ends with the same bits as an uninterrupted one", async () => {
    const opts: Partial<MaeTrainOptions> = { gradients: ort };
    const straight = await trainMae(options(join(root, "ort-straight"), opts));
    straight.model.dispose();
    const out = join(root, "ort-resumed");
    const first = await trainMae(options(out, { ...opts, onStep: (e, trainer) => { if (e.step === 2) trainer.stop(); } }));
    expect(first.steps).toBe(2);
    first.model.dispose();
    const second = await trainMae(options(out, { ...opts, resume: true }));
    expect(second.status).toBe("completed");
    second.model.dispose();
    expect(readFileSync(join(out, "model.safetensors")).equals(readFileSync(join(root, "ort-straight", "model.safetensors")))).toBe(true);
    expect(readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step)).toEqual([1, 2, 3, 4]);
  });
});
