import { describe, it, expect, beforeAll, afterAll } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, rmSync, readFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, readImage, readSafetensors, transpose2d, writeImage, writeSafetensors, SafetensorsCheckpoint } from "@lm4lv/core";
import type { RgbImage, TensorToWrite } from "@lm4lv/core";
import { TrainRng } from "@lm4lv/train";
import { ViTMAE } from "./model.js";
import { vitMAEPreset, VIT_MAE_PRESETS } from "./config.js";
import type { ViTMAEConfig } from "./config.js";
import { decoderFinetuneLoss } from "./losses.js";
import { normalizeImageNet } from "./ops.js";
import { ImageSet } from "./image-set.js";
import { evaluateReconstruction } from "./evaluation.js";
import { trainMae } from "./training.js";
import type { MaeTrainOptions } from "./training.js";

/** The parameters whose names start with `prefix`, as F32 arrays (HF layout). */
function snapshotParameters(mae: ViTMAE, prefix = ""): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of mae.namedParameters()) if (name.startsWith(prefix)) out[name] = Float32Array.from(t.dataSync() as Float32Array);
  return out;
}

const CONFIG: ViTMAEConfig = vitMAEPreset("tiny", {
  image_size: 16,
  patch_size: 4,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 64,
  decoder_hidden_size: 16,
  decoder_num_hidden_layers: 1,
  decoder_num_attention_heads: 2,
  decoder_intermediate_size: 32,
});

/** A smooth random picture: a colour gradient plus a soft blob. */
function randomPicture(rng: TrainRng, size: number): RgbImage {
  const data = new Float32Array(size * size * 3);
  const base = [0.3 + 0.3 * rng.uniform(), 0.3 + 0.3 * rng.uniform(), 0.3 + 0.3 * rng.uniform()];
  const grad = [rng.uniform() - 0.5, rng.uniform() - 0.5, rng.uniform() - 0.5];
  const blobs = [0].map(() => ({ x: rng.uniform() * size, y: rng.uniform() * size, r: 2 + rng.uniform() * 4, c: [rng.uniform(), rng.uniform(), rng.uniform()] }));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        let v = base[c] + (grad[c] * (x + y)) / size;
        for (const b of blobs) {
          const w = Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.r * b.r));
          v = v * (1 - w) + b.c[c] * w;
        }
        data[(y * size + x) * 3 + c] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return { width: size, height: size, data };
}

let root: string;
let dataDir: string;
let pretrainedDir: string;

function baseOptions(out: string, extra: Partial<MaeTrainOptions> = {}): MaeTrainOptions {
  return {
    stage: "pretrain",
    data: dataDir,
    out,
    config: CONFIG,
    steps: 20,
    batchSize: 8,
    lr: 5e-3,
    warmup: 2, // the §7 default (10 steps) would be half of a 20-step run
    seed: 1,
    checkpointEvery: 0,
    cropBorder: 0, // 16 px images: a 4 px border would leave less than SSIM's 11 px window
    progress: false,
    handleSigint: false,
    log: () => {},
    ...extra,
  };
}

/** Pre-training loss over every image with fixed masking noise. */
function fixedPretrainLoss(mae: ViTMAE, set: ImageSet): number {
  const idx = Array.from({ length: set.length }, (_, i) => i);
  const rng = new TrainRng(99);
  return tf.tidy(() => {
    const noise = tf.tensor2d(Float32Array.from({ length: set.length * mae.numPatches }, () => rng.uniform()), [set.length, mae.numPatches]);
    const out = mae.forward(normalizeImageNet(set.tensor(idx)), { noise });
    return out.loss.dataSync()[0];
  });
}

/** Spec §6 L1 loss of the unmasked reconstruction over every image. */
function fixedDecoderLoss(mae: ViTMAE, set: ImageSet): number {
  const idx = Array.from({ length: set.length }, (_, i) => i);
  return tf.tidy(() => {
    const x01 = set.tensor(idx);
    return decoderFinetuneLoss(mae.decodeSync(mae.encodeSync(normalizeImageNet(x01))), x01).dataSync()[0];
  });
}

function tensorsOf(file: string): Record<string, Float32Array> {
  const ck = SafetensorsCheckpoint.open(file);
  try {
    return Object.fromEntries(ck.keys().map((k) => [k, ck.readFloat32(k)]));
  } finally {
    ck.close();
  }
}

beforeAll(async () => {
  await initBackend("wasm");
  root = mkdtempSync(join(tmpdir(), "mae-training-"));
  dataDir = join(root, "images");
  mkdirSync(dataDir);
  const rng = new TrainRng(7);
  for (let i = 0; i < 24; i++) await writeImage(join(dataDir, `img${String(i).padStart(2, "0")}.png`), randomPicture(rng, 16));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("configs", () => {
  it("the tiny preset is the embedded default and fits the size budget", () => {
    const c = vitMAEPreset("tiny");
    expect(c.hidden_size).toBe(192);
    expect(c.image_size).toBe(64);
    expect(c.layer_norm_eps).toBe(1e-6);
    const mae = ViTMAE.fromConfig(VIT_MAE_PRESETS.tiny, 0);
    expect(mae.parameterCount()).toBeLessThan(4_000_000);
    mae.dispose();
    expect(() => vitMAEPreset("nope" as "tiny")).toThrow(/unknown ViTMAE preset "nope"/);
    expect(vitMAEPreset("tiny", { image_size: undefined, patch_size: 16 })).toMatchObject({ image_size: 64, patch_size: 16 });
  });
});

describe("ImageSet", () => {
  it("loads CHW pixels and mirrors on request", async () => {
    const set = await ImageSet.load(dataDir, 16);
    expect(set.length).toBe(24);
    const plain = set.gather([3]);
    const flipped = set.gather([3], [true]);
    // channel 1, row 5, column 2 ↔ column 13
    expect(flipped[256 + 5 * 16 + 2]).toBe(plain[256 + 5 * 16 + 13]);
    expect(() => set.gather([24])).toThrow(/out of range/);
    // files are decoded several at a time: each item must still hold its own file's pixels
    for (const i of [0, 11, 23]) {
      const img = await readImage(set.files[i], { size: 16 }); // HWC
      const chw = set.gather([i]);
      expect([chw[0], chw[256 + 7 * 16 + 9], chw[512 + 255]]).toEqual([img.data[0], img.data[3 * (7 * 16 + 9) + 1], img.data[3 * 255 + 2]]);
    }
  });
});

describe("trainMae", () => {
  it("pre-training lowers the masked loss and writes the HF folder, loss.svg, loss.csv and samples.png", async () => {
    const set = await ImageSet.load(dataDir, 16);
    const before = ViTMAE.fromConfig(CONFIG, 1); // trainMae starts from the same seeded init
    const l0 = fixedPretrainLoss(before, set);
    before.dispose();
    pretrainedDir = join(root, "pretrain");
    const r = await trainMae(baseOptions(pretrainedDir, { val: dataDir, valCount: 8 }));
    const l1 = fixedPretrainLoss(r.model, set);
    expect(r.status).toBe("completed");
    expect(r.steps).toBe(20);
    expect(l1, `loss ${l0} → ${l1}`).toBeLessThan(l0 * 0.95); // deterministic (fixed noise); an update that does nothing leaves it at l0
    expect(r.score?.count).toBe(8);
    expect(Number.isFinite(r.score?.psnr)).toBe(true);
    r.model.dispose();
    for (const f of ["config.json", "model.safetensors", "loss.svg", "loss.csv", "samples.png", "checkpoints/last.safetensors"]) expect(existsSync(join(pretrainedDir, f))).toBe(true);
    expect(JSON.parse(readFileSync(join(pretrainedDir, "config.json"), "utf8")).image_size).toBe(16);
  });

  it("decoder fine-tuning lowers the L1 loss, trains decoder_pos_embed and leaves the encoder bit-identical", async () => {
    const set = await ImageSet.load(dataDir, 16);
    const init = ViTMAE.fromPretrained(pretrainedDir);
    const l0 = fixedDecoderLoss(init, set);
    const encoder0 = snapshotParameters(init, "vit.");
    const pos0 = snapshotParameters(init, "decoder.decoder_pos_embed")["decoder.decoder_pos_embed"];
    init.dispose();
    const r = await trainMae(baseOptions(join(root, "finetune"), { stage: "finetune", init: pretrainedDir, config: undefined }));
    expect(r.status).toBe("completed");
    expect(fixedDecoderLoss(r.model, set)).toBeLessThan(l0 * 0.9);
    const encoder1 = snapshotParameters(r.model, "vit.");
    expect(Object.keys(encoder1).sort()).toEqual(Object.keys(encoder0).sort());
    for (const [name, v] of Object.entries(encoder0)) expect(Buffer.from(encoder1[name].buffer).equals(Buffer.from(v.buffer)), name).toBe(true);
    const pos1 = snapshotParameters(r.model, "decoder.decoder_pos_embed")["decoder.decoder_pos_embed"];
    expect(Buffer.from(pos1.buffer).equals(Buffer.from(pos0.buffer))).toBe(false);
    r.model.dispose();
    // and the written file holds the same encoder
    const written = tensorsOf(join(root, "finetune", "model.safetensors"));
    const initial = tensorsOf(join(pretrainedDir, "model.safetensors"));
    for (const name of Object.keys(initial).filter((n) => n.startsWith("vit."))) expect(Buffer.from(written[name].buffer).equals(Buffer.from(initial[name].buffer)), name).toBe(true);
  });

  it("finetune without --init is refused", async () => {
    await expect(trainMae(baseOptions(join(root, "bad"), { stage: "finetune" }))).rejects.toThrow(/--init/);
  });

  it("a validation crop that leaves less than the SSIM window is refused before training", async () => {
    // 16 px images with the default 4 px border: 8×8 < 11×11 (this used to fail at the first validation)
    const out = join(root, "bad-crop");
    await expect(trainMae(baseOptions(out, { val: dataDir, cropBorder: undefined }))).rejects.toThrow(/--crop-border\): validation images of 16×16 are 8×8 .* \(set --crop-border 2 or less\)/);
    expect(existsSync(join(out, "checkpoints"))).toBe(false);
    await expect(trainMae(baseOptions(out, { val: dataDir, cropBorder: 3 }))).rejects.toThrow(/are 10×10/);
  });

  it("a run interrupted and resumed ends with the same bits as an uninterrupted one", async () => {
    const opts = { steps: 6, batchSize: 4, gradAccum: 2 };
    const straight = await trainMae(baseOptions(join(root, "straight"), opts));
    straight.model.dispose();

    const out = join(root, "resumed");
    const first = await trainMae(baseOptions(out, { ...opts, onStep: (e, trainer) => { if (e.step === 3) trainer.stop(); } }));
    expect(first.status).toBe("stopped");
    expect(first.steps).toBe(3);
    expect(existsSync(join(out, "model.safetensors"))).toBe(false);
    first.model.dispose();
    const second = await trainMae(baseOptions(out, { ...opts, resume: true }));
    expect(second.status).toBe("completed");
    second.model.dispose();

    const a = readFileSync(join(root, "straight", "model.safetensors"));
    const b = readFileSync(join(out, "model.safetensors"));
    expect(b.equals(a)).toBe(true);
  });

  it("resumes a lm4lv-train/1 checkpoint (Linear weights and their moments as [in, out] kernels) to the same bits", async () => {
    const opts = { steps: 6, batchSize: 4, gradAccum: 2 };
    const out = join(root, "legacy");
    const first = await trainMae(baseOptions(out, { ...opts, onStep: (e, trainer) => { if (e.step === 3) trainer.stop(); } }));
    first.model.dispose();
    // rewrite the checkpoint as the code before HF-layout parameters wrote it
    const path = join(out, "checkpoints", "last.safetensors");
    const { tensors, metadata } = readSafetensors(path);
    const old: Record<string, TensorToWrite> = {};
    let transposed = 0;
    for (const [name, t] of Object.entries(tensors)) {
      const data = t.data as Float32Array;
      if (t.shape.length !== 2) old[name] = { shape: t.shape, data };
      else {
        old[name] = { shape: [t.shape[1], t.shape[0]], data: transpose2d(data, t.shape[0], t.shape[1]) };
        transposed += 1;
      }
    }
    expect(transposed).toBe(3 * 20); // 3 blocks × 6 Linear weights + decoder_embed + decoder_pred, each with two Adam moments
    writeSafetensors(path, old, { ...metadata, format: "lm4lv-train/1" });
    const second = await trainMae(baseOptions(out, { ...opts, resume: true }));
    expect(second.status).toBe("completed");
    second.model.dispose();
    expect(readFileSync(join(out, "model.safetensors")).equals(readFileSync(join(root, "straight", "model.safetensors")))).toBe(true);
  });
});

describe("saving and evaluation", () => {
  it("F16 export loads back within half precision, and scores a folder's reconstructions", async () => {
    const mae = ViTMAE.fromConfig(CONFIG, 3);
    const dir = join(root, "f16");
    mae.save(dir, { dtype: "f16" });
    const ck = SafetensorsCheckpoint.open(join(dir, "model.safetensors"));
    expect(ck.entry("decoder.decoder_pred.weight").dtype).toBe("F16");
    expect(ck.entry("decoder.decoder_pred.weight").shape).toEqual([4 * 4 * 3, 16]); // HF [out, in]
    ck.close();
    const back = ViTMAE.fromPretrained(dir);
    const a = snapshotParameters(mae);
    const b = snapshotParameters(back);
    for (const [name, v] of Object.entries(a)) {
      let worst = 0;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - b[name][i]) / Math.max(1e-3, Math.abs(v[i])));
      expect(worst, name).toBeLessThan(2e-3);
    }
    const s = await evaluateReconstruction(back, dataDir, { limit: 4, cropBorder: 0 });
    expect(s.count).toBe(4);
    expect(s.psnr).toBeGreaterThan(0);
    expect(s.ssim).toBeLessThanOrEqual(1);
    mae.dispose();
    back.dispose();
  });
});

describe("MAE_TRAINING_OPTIONS (one default per setting)", () => {
  it("fills the defaults pnpm train mae shows, and rejects bad settings by name before loading anything", async () => {
    const { MAE_TRAINING_OPTIONS } = await import("./training.js");
    expect(MAE_TRAINING_OPTIONS.parse({ data: "d", out: "o" })).toMatchObject({ stage: "pretrain", steps: 1000, batchSize: 32, lr: 1.5e-3, clipNorm: 1, checkpointEvery: 50, valEvery: 100, valCount: 64, dtype: "f32", flip: true });
    await expect(trainMae({ data: "/nonexistent", out: "/nonexistent/o", stage: "distil" as "pretrain", lr: 0, maskRatio: 1 })).rejects.toThrow(
      'trainMae: stage: expected one of pretrain, finetune, autoencode, got "distil"; trainMae: lr: expected a positive number, got 0; trainMae: maskRatio: expected a number in [0, 1), got 1',
    );
  });
});
