/**
 * Training of the LM4LV adapters + task tokens (spec §4, §7) with everything else frozen,
 * composed from @lm4lv/train: Adam (0.9, 0.95), warm-up/decay schedule, clipping, accumulation,
 * atomic checkpoints with exact resume, validation PSNR/SSIM, loss curve and sample grid.
 * Gradients: tfjs autodiff of `LM4LV.loss`, or an external engine given as `gradients` (ONNX
 * Runtime: `ortLM4LVGradients` of @lm4lv/onnx, which encodes each distinct image once).
 */
import * as tf from "@tensorflow/tfjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { fieldPath, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, validateConfig, writeImage, type RgbImage } from "@lm4lv/core";
import { psnr, ssim } from "@lm4lv/metrics";
import { ShuffledBatches, imageGrid, runTraining, type GradientFn, type TrainResult, type ProgressOptions } from "@lm4lv/train";
import type { LM4LV } from "./lm4lv.js";
import { defaultCropBorder } from "./inference.js";
import type { FeatureCache } from "./feature-cache.js";
import { ADAPTER_DTYPES } from "@lm4lv/adapters";

/** Where gradients are computed: ONNX Runtime (reverse-mode graphs of @lm4lv/onnx, given as `gradients`) or tfjs autodiff. */
export type TrainEngine = "ort" | "tfjs";

/** What the trainer needs of a dataset: `@lm4lv/data`'s FolderPairDataset and JsonDataset fit. */
export interface PairSource {
  readonly length: number;
  get(i: number, epoch?: number): Promise<{ lq: RgbImage; hq: RgbImage }>;
}

/**
 * The hyperparameters of LM4LV training and their defaults — the one place each default lives
 * (`pnpm train lm4lv` shows and uses these). Spec §7: Adam (0.9, 0.95), lr 3e-4, clipping 1.0.
 */
export const LM4LV_TRAINING_OPTIONS = z.object({
  /** Optimiser steps. */
  steps: positiveInt(),
  /** Image pairs per micro-batch (at most the dataset's size); each is `tiles`² pairs of tiles for a tiled model. */
  batchSize: positiveInt().default(4),
  /** Micro-batches per optimiser step. */
  gradAccum: positiveInt().default(1),
  /** Peak learning rate (spec §7: 3e-4 at batch 256). */
  lr: positiveNumber().default(3e-4),
  /** Gradient clipping (max global norm). */
  clipNorm: positiveNumber().default(1.0),
  /** Seed of the adapters' data order and degradations. */
  seed: z.number("expected an integer").int("expected an integer").default(0),
  /** Steps between checkpoints (0: only at the end). */
  checkpointEvery: nonNegativeInt().default(50),
  /** Steps between validations (0: only at the end). */
  validateEvery: nonNegativeInt().default(0),
  /** How many validation pairs to restore each time (autoregressive: slow, keep it small). */
  valCount: nonNegativeInt().default(4),
  /** Continue from `<outDir>/checkpoints/last.safetensors`. */
  resume: z.boolean().default(false),
  /**
   * Gradient engine: "tfjs" (autodiff) or "ort", run by the engine given as `gradients` (e.g.
   * `ortLM4LVGradients` of @lm4lv/onnx: the MAE features of each image are computed once). When
   * left out: "ort" if `gradients` is given, else "tfjs".
   */
  engine: oneOf(["ort", "tfjs"]).default("tfjs"),
  /** ORT intra-op threads (default: the number of cores). */
  threads: positiveInt().optional(),
  /**
   * Outside the paper's recipe (exposure bias): std of Gaussian noise added to the clean features
   * fed as teacher-forced inputs (targets stay clean), drawn from the trainer's RNG. ORT engine only.
   */
  inputNoise: nonNegativeNumber().default(0),
  /**
   * Outside the paper's recipe: after every step, rescale the adapter (weight and bias together)
   * so that the RMS of its output for unit-RMS isotropic features is at most this value (‖W‖_F ≤
   * r·√Dl, RMS(b) ≤ r): keeps the adapted visual tokens at the scale of the LM's token embeddings
   * instead of letting them swamp the residual stream. Default: no constraint.
   */
  adapterMaxRms: positiveNumber().optional(),
  /** Storage type of the final adapters.safetensors (F16: half the bytes, for shipped checkpoints); resume checkpoints stay F32. */
  saveDtype: oneOf(ADAPTER_DTYPES).default("F32"),
});

export type LM4LVTrainingHyperparameters = z.output<typeof LM4LV_TRAINING_OPTIONS>;

export type TrainLM4LVOptions = z.input<typeof LM4LV_TRAINING_OPTIONS> & {
  model: LM4LV;
  train: PairSource;
  /** Validation pairs (restored autoregressively: slow, keep it small). */
  val?: PairSource;
  outDir: string;
  signal?: AbortSignal;
  handleSigint?: boolean;
  progress?: boolean | ProgressOptions;
  /** The external gradient engine that `engine: "ort"` runs (e.g. `ortLM4LVGradients` of @lm4lv/onnx). */
  gradients?: LM4LVGradientEngine;
  /** Called after every optimiser step (e.g. to abort a run in a test). */
  onStep?: (step: number, loss: number) => void;
  /** Extra fields for lm4lv.json. */
  extra?: Record<string, unknown>;
};

/** Rescales adapter.weight/bias so their output RMS bound is at most `r` (see adapterMaxRms). */
export function constrainAdapterScale(model: LM4LV, r: number): number {
  const vars = model.adapters.namedVariables();
  const w = vars["adapter.weight"], b = vars["adapter.bias"];
  const dl = w.shape[0];
  const [wNorm, bRms] = tf.tidy(() => [tf.norm(w).dataSync()[0], Math.sqrt(tf.mean(tf.square(b)).dataSync()[0])]);
  const scale = Math.min(1, (r * Math.sqrt(dl)) / wNorm, bRms > 0 ? r / bRms : 1);
  if (scale < 1) {
    const [w2, b2] = tf.tidy(() => [tf.mul(w, scale), tf.mul(b, scale)]);
    w.assign(w2);
    b.assign(b2);
    tf.dispose([w2, b2]);
  }
  return scale;
}

/** A training pair at the MAE's size (a pair of tiles for a tiled model); `noise` is the teacher-forced input noise (`inputNoise`), drawn by the trainer. */
export type LM4LVPair = { lq: RgbImage; hq: RgbImage; noise?: Float32Array };

/** What an external gradient engine is built for. */
export interface LM4LVEngineRun {
  /** Intra-op threads of the engine (default: the number of cores). */
  threads?: number;
  /** The pairs carry `noise` to add to the teacher-forced clean features. */
  inputNoise?: boolean;
}

/**
 * An external gradient engine of the §4 loss, e.g. ONNX Runtime's (`ortLM4LVGradients` of
 * @lm4lv/onnx): the adapters' and task tokens' gradients of a batch of pairs, with everything else frozen.
 */
export interface LM4LVGradients {
  /** Shown in the log ("onnxruntime"). */
  name: string;
  gradients: GradientFn<LM4LVPair[]>;
  /** The MAE features it keeps (an engine that encodes each distinct image once). */
  cache?: FeatureCache;
  release(): Promise<void>;
}

/** Builds the engine for the run's model (its adapters' variables are the trained ones). */
export type LM4LVGradientEngine = (model: LM4LV, run: LM4LVEngineRun) => Promise<LM4LVGradients>;

export interface ValMetrics {
  psnr: number;
  ssim: number;
  /** The same metrics of the degraded inputs against the targets. */
  psnrInput: number;
  ssimInput: number;
}

/** Restores `count` validation pairs; mean PSNR/SSIM (spec §9) of output and input vs target, and the images. */
export async function evaluatePairs(model: LM4LV, data: PairSource, count: number): Promise<ValMetrics & { rows: RgbImage[][] }> {
  const n = Math.min(count, data.length);
  let p = 0, s = 0, pi = 0, si = 0;
  const rows: RgbImage[][] = [];
  for (let i = 0; i < n; i++) {
    const { lq, hq } = await data.get(i, 0);
    const lqFit = await model.fit(lq);
    const hqFit = await model.fit(hq);
    const { image, features } = await model.restore(lqFit);
    features.dispose();
    const border = defaultCropBorder(model.imageSize);
    p += psnr(hqFit, image, { cropBorder: border });
    s += ssim(hqFit, image, { cropBorder: border });
    pi += psnr(hqFit, lqFit, { cropBorder: border });
    si += ssim(hqFit, lqFit, { cropBorder: border });
    rows.push([lqFit, image, hqFit]);
  }
  return { psnr: p / n, ssim: s / n, psnrInput: pi / n, ssimInput: si / n, rows };
}

/** Trains the adapters of `model`; writes `<outDir>/adapters.safetensors`, `lm4lv.json`, `loss.svg`, `loss.csv`, `samples.png`. */
export async function trainLM4LV(o: TrainLM4LVOptions): Promise<TrainResult & { final?: ValMetrics }> {
  const { model } = o;
  const h = validateConfig(o, LM4LV_TRAINING_OPTIONS, (path) => `trainLM4LV: ${fieldPath(path)}`);
  const batchSize = h.batchSize;
  mkdirSync(o.outDir, { recursive: true });
  const batches = new ShuffledBatches({
    size: o.train.length,
    batchSize: Math.min(batchSize, o.train.length),
    seed: h.seed,
    // pairs of an epoch are made with a per-(item, epoch) seed: reproducible and different every epoch
    load: async (idx, rng) => {
      // images at the model's size, then cut into tiles (tiles > 1): a batch holds batchSize · tiles² pairs of the MAE's size
      const pairs: LM4LVPair[] = model.splitPairs(await Promise.all(idx.map(async (i) => {
        const { lq, hq } = await o.train.get(i, batches.epoch);
        return { lq: await model.fit(lq), hq: await model.fit(hq) };
      })));
      const sigma = h.inputNoise;
      if (sigma > 0) {
        const n = model.numVisualTokens * model.models.vision.hiddenSize;
        for (const p of pairs) p.noise = Float32Array.from({ length: n }, () => sigma * rng.normal());
      }
      return pairs;
    },
  });
  const valCount = h.valCount;
  let final: ValMetrics | undefined;
  const { inputNoise, adapterMaxRms } = h;
  const engine = o.engine === undefined && o.gradients ? "ort" : h.engine;
  if (engine === "ort" && !o.gradients) throw new Error('trainLM4LV: engine "ort" needs its gradient engine as `gradients` (ortLM4LVGradients of @lm4lv/onnx)');
  if (adapterMaxRms !== undefined) constrainAdapterScale(model, adapterMaxRms); // the initial adapter too
  if (inputNoise > 0 && engine !== "ort") throw new Error("inputNoise needs the ORT engine (engine: \"ort\")");
  const ortEngine = engine === "ort" ? await o.gradients!(model, { threads: h.threads, inputNoise: inputNoise > 0 }) : undefined;
  const result = await runTraining({
    variables: model.adapters.namedVariables(),
    ...(ortEngine
      ? { gradients: ortEngine.gradients }
      : {
          loss: (pairs: LM4LVPair[]) => {
            const { loss, ce, mse } = model.loss(pairs);
            return { loss, parts: { ce, mse } };
          },
        }),
    metricsFile: join(o.outDir, "metrics.jsonl"),
    data: batches,
    totalSteps: h.steps,
    seed: h.seed,
    optimizer: { lr: h.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8 },
    clipNorm: h.clipNorm,
    accumulate: h.gradAccum,
    batchSize,
    checkpointDir: join(o.outDir, "checkpoints"),
    checkpointEvery: h.checkpointEvery,
    resume: h.resume,
    validate: o.val
      ? async () => {
          const m = await evaluatePairs(model, o.val!, valCount);
          final = { psnr: m.psnr, ssim: m.ssim, psnrInput: m.psnrInput, ssimInput: m.ssimInput };
          return { metric: -m.psnr, psnr: m.psnr, ssim: m.ssim, psnrInput: m.psnrInput };
        }
      : undefined,
    validateEvery: h.validateEvery,
    config: { task: model.task, tiles: model.tiles, steps: h.steps, batchSize, lr: h.lr, seed: h.seed, engine, inputNoise, adapterMaxRms: adapterMaxRms ?? null },
    progress: o.progress ?? true,
    lossPlot: join(o.outDir, "loss.svg"),
    signal: o.signal,
    handleSigint: o.handleSigint ?? true,
    onStep: (entry) => {
      if (adapterMaxRms !== undefined) constrainAdapterScale(model, adapterMaxRms);
      o.onStep?.(entry.step, entry.loss);
    },
  }).finally(() => ortEngine?.release());
  model.save(o.outDir, result.step, { ...o.extra, status: result.status, ...(final ? { validation: final } : {}) }, h.saveDtype);
  if (o.val && o.val.length > 0) {
    const m = await evaluatePairs(model, o.val, Math.min(valCount, 4));
    await writeImage(join(o.outDir, "samples.png"), imageGrid(m.rows));
  }
  return { ...result, final };
}

