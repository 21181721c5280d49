/**
 * MAE training (`pnpm train mae`): the masked pre-training task (HF `ViTMAEForPreTraining` loss),
 * the spec §6 decoder fine-tuning task (encoder frozen, no masking, L1 on de-normalised
 * reconstructions), unmasked autoencoder training, and the whole run (`trainMae`) on top of
 * `@lm4lv/train`'s Trainer: checkpoints with exact resume, validation PSNR/SSIM, loss.svg +
 * loss.csv, samples.png and the HF folder at the end.
 *
 * Randomness (masking noise, flips, epoch order) comes only from the trainer's seeded RNG and the
 * batch iterator, both saved in checkpoints, so a resumed run is exact. The trained variables are
 * the model's `trainableParameters` (HF names and layout).
 *
 * Gradients: tfjs autodiff of `MaeTask.loss`, or an external engine given as `gradients` (ONNX
 * Runtime: `ortMaeGradients` of @lm4lv/onnx); the optimiser, clipping, accumulation and
 * checkpoints are the trainer's either way.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { fieldPath, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, validateConfig, writeImage } from "@lm4lv/core";
import { DEFAULT_CROP_BORDER, SSIM_WINDOW } from "@lm4lv/metrics";
import { Trainer, transposeTensorData, writeLossPlot } from "@lm4lv/train";
import type { FloatTensorData, GradientFn, HistoryEntry, JsonValue, ProgressOptions, TrainResult, ValidationEntry } from "@lm4lv/train";
import { ViTMAE } from "./model.js";
import { VIT_MAE_PRESETS } from "./config.js";
import type { ViTMAEConfig } from "./config.js";
import { decoderFinetuneLoss } from "./losses.js";
import { normalizeImageNet } from "./ops.js";
import { ImageSet, maeBatches } from "./image-set.js";
import type { MaeBatch } from "./image-set.js";
import { evaluateReconstruction, sampleGrid } from "./evaluation.js";
import type { ReconstructionScore } from "./evaluation.js";

function batchPixels01(b: MaeBatch): tf.Tensor4D {
  return tf.tensor4d(b.pixels01, [b.count, 3, b.size, b.size]);
}

// --- Tasks ---------------------------------------------------------------------------------------

/** Parameters that MAE pre-training keeps fixed (sin-cos position embeddings, as in the MAE code). */
export const FIXED_PRETRAIN_PARAMETERS = ["vit.embeddings.position_embeddings", "decoder.decoder_pos_embed"] as const;

export interface MaeTask {
  variables: Record<string, tf.Variable>;
  /** Mean loss over the batch (the tensors it makes live inside the trainer's gradient scope). */
  loss: (batch: MaeBatch) => { loss: tf.Scalar; parts: Record<string, tf.Scalar> };
}

/** Masked pre-training: HF loss (MSE on removed patches, optional norm-pix target); noise from the batch. */
export function maePretrainTask(mae: ViTMAE, opts: { maskRatio?: number; normPixLoss?: boolean } = {}): MaeTask {
  const fixed = new Set<string>(FIXED_PRETRAIN_PARAMETERS);
  const variables = mae.trainableParameters((n) => !fixed.has(n));
  const n = mae.numPatches;
  return {
    variables,
    loss: (batch) => {
      if (!batch.noise || batch.noise.length !== batch.count * n) throw new Error(`maePretrainTask: batch needs [${batch.count}, ${n}] masking noise`);
      const pixels = normalizeImageNet(batchPixels01(batch)); // [B, 3, S, S]
      const noise = tf.tensor2d(batch.noise, [batch.count, n]); // [B, N]
      const out = mae.forward(pixels, { noise, maskRatio: opts.maskRatio, normPixLoss: opts.normPixLoss });
      return { loss: out.loss, parts: {} };
    },
  };
}

/** Spec §6: encoder frozen, no masking, identity order; L1 between de-normalised reconstruction and the [0,1] image. */
export function maeDecoderFinetuneTask(mae: ViTMAE): MaeTask {
  const variables = mae.trainableParameters((n) => n.startsWith("decoder."));
  return {
    variables,
    loss: (batch) => {
      const target01 = batchPixels01(batch); // [B, 3, S, S]
      const features = mae.encodeSync(normalizeImageNet(target01)); // [B, 1+N, D], no gradient path to the encoder
      const recon = mae.decodeSync(features); // [B, 3, S, S] normalised
      const l1 = decoderFinetuneLoss(recon, target01);
      return { loss: l1, parts: {} };
    },
  };
}

/**
 * Unmasked autoencoder training (MAE-r's objective from the start, issue "restores at small
 * scale"): no masking, identity order, every weight but the fixed sin-cos position embeddings
 * trains, L1 between the de-normalised reconstruction and the [0,1] image.
 */
export function maeAutoencodeTask(mae: ViTMAE): MaeTask {
  const fixed = new Set<string>(FIXED_PRETRAIN_PARAMETERS);
  const variables = mae.trainableParameters((n) => !fixed.has(n));
  return {
    variables,
    loss: (batch) => {
      const target01 = batchPixels01(batch); // [B, 3, S, S]
      const recon = mae.decodeSync(mae.encodeSync(normalizeImageNet(target01))); // [B, 3, S, S] normalised
      return { loss: decoderFinetuneLoss(recon, target01), parts: {} };
    },
  };
}

/** What an external gradient engine is built for: the run's stage and its static batch size. */
export interface MaeEngineRun {
  stage: MaeStage;
  /** Images per micro-batch: a training graph's static batch size. */
  batchSize: number;
  maskRatio: number;
  normPixLoss: boolean;
}

/** An external gradient engine, e.g. ONNX Runtime's (`ortMaeGradients` of @lm4lv/onnx). */
export interface MaeGradients {
  /** Shown in the log ("onnxruntime"). */
  name: string;
  gradients: GradientFn<MaeBatch>;
  release(): Promise<void>;
}

/** Builds the engine for the run's model and trained variables (by HF name). */
export type MaeGradientEngine = (mae: ViTMAE, variables: Record<string, tf.Variable>, run: MaeEngineRun) => Promise<MaeGradients>;

/**
 * Checkpoints of format lm4lv-train/1 held the MAE's Linear weights (its 2-D parameters) as
 * `[in, out]` kernels under their HF names; the trainer's `upgradeLegacy` transposes them.
 */
export function legacyMaeTensor(name: string, t: FloatTensorData): [string, FloatTensorData] {
  return [name, t.shape.length === 2 ? transposeTensorData(t) : t];
}

// --- A whole run ---------------------------------------------------------------------------------

export type MaeStage = (typeof MAE_STAGES)[number];

export const MAE_STAGES = ["pretrain", "finetune", "autoencode"] as const;

/**
 * The settings of an MAE training run and their defaults — the one place each default lives
 * (`pnpm train mae` shows and uses these). Adam β (0.9, 0.95), schedule and warmup as spec §7.
 */
export const MAE_TRAINING_OPTIONS = z.object({
  /** pretrain (masked, all weights) | finetune (spec §6: decoder only, encoder frozen, no masking) | autoencode (no masking, L1, encoder and decoder). */
  stage: oneOf(MAE_STAGES).default("pretrain"),
  /** Folder of training images (resized to the model's image size). */
  data: z.string("expected a folder of images"),
  /** Folder of validation images (PSNR/SSIM of the unmasked reconstruction). */
  val: z.string().optional(),
  /** Output folder: the HF model, loss.svg + loss.csv, samples.png (and checkpoints/ unless `checkpointDir`). */
  out: z.string("expected a folder"),
  /** Checkpoint folder. Default `<out>/checkpoints`. */
  checkpointDir: z.string().optional(),
  /** HF MAE folder to start from (required for "finetune"). */
  init: z.string().optional(),
  /** Optimisation steps. */
  steps: positiveInt().default(1000),
  /** Images per micro-batch. */
  batchSize: positiveInt().default(32),
  /** Micro-batches per step. */
  gradAccum: positiveInt().default(1),
  /** Peak learning rate (Adam β 0.9, 0.95). */
  lr: positiveNumber().default(1.5e-3),
  /** Warmup steps (default: spec §7, max(10, 10 %)). */
  warmup: nonNegativeInt().optional(),
  schedule: oneOf(["warmup-linear", "cosine", "constant"]).default("warmup-linear"),
  /** Max global gradient norm; null: no clipping. */
  clipNorm: positiveNumber().nullable().default(1.0),
  /** Decoupled weight decay. */
  weightDecay: nonNegativeNumber().default(0),
  /** Seed of the initialisation, data order, flips and masking. */
  seed: z.number("expected an integer").int("expected an integer").default(0),
  /** Pre-training mask ratio; default: the config's. */
  maskRatio: z.number("expected a number in [0, 1)").min(0, "expected a number in [0, 1)").lt(1, "expected a number in [0, 1)").optional(),
  /** Pre-training target standardised per patch; default: the config's. */
  normPixLoss: z.boolean().optional(),
  /** Random left-right flips. */
  flip: z.boolean().default(true),
  /** Use at most this many training images (0: all). */
  limit: nonNegativeInt().default(0),
  /** Validate every n steps (and at the end; 0: only at the end). */
  valEvery: nonNegativeInt().default(100),
  /** Validate on at most this many images of `val`. */
  valCount: positiveInt().default(64),
  /** Pixels cropped at each border before PSNR/SSIM (default: the metrics' own). */
  cropBorder: nonNegativeInt().optional(),
  /** Save `<checkpointDir>/last.safetensors` every n steps (0: only at the end). */
  checkpointEvery: nonNegativeInt().default(50),
  /** Continue from `<checkpointDir>/last.safetensors`. */
  resume: z.boolean().default(false),
  /** dtype of the written model.safetensors. */
  dtype: oneOf(["f32", "f16"]).default("f32"),
  /** Rows of samples.png (input | reconstruction). */
  samples: nonNegativeInt().default(8),
  /** Folder whose first images make samples.png. Default: `val`, else `data`. */
  samplesFrom: z.string().optional(),
});

export type MaeTrainSettings = z.output<typeof MAE_TRAINING_OPTIONS>;

export type MaeTrainOptions = z.input<typeof MAE_TRAINING_OPTIONS> & {
  /** Model configuration for a random start (pre-training without `init`). Default the "tiny" preset. */
  config?: ViTMAEConfig;
  /** An external gradient engine (e.g. `ortMaeGradients` of @lm4lv/onnx); default tfjs autodiff. */
  gradients?: MaeGradientEngine;
  progress?: boolean | ProgressOptions;
  signal?: AbortSignal;
  handleSigint?: boolean;
  onStep?: (entry: HistoryEntry, trainer: Trainer<MaeBatch>) => void | Promise<void>;
  log?: (message: string) => void;
};

export interface MaeTrainResult {
  status: TrainResult["status"];
  steps: number;
  /** Mean loss of the last min(20, steps) steps of this run's history. */
  finalLoss: number;
  validation: ValidationEntry[];
  /** Final PSNR/SSIM on `val` (when given). */
  score?: ReconstructionScore;
  seconds: number;
  imagesPerSecond: number;
  /** The trained model (the caller disposes it). */
  model: ViTMAE;
  /** Where the model was written (absent when the run was stopped before the end). */
  modelDir?: string;
}

/** Loads data and model, trains one stage, writes the HF folder, loss.svg, loss.csv and samples.png to `out`. */
export async function trainMae(options: MaeTrainOptions): Promise<MaeTrainResult> {
  const o = { ...options, ...validateConfig(options, MAE_TRAINING_OPTIONS, (path) => `trainMae: ${fieldPath(path)}`) };
  const log = o.log ?? ((m: string) => console.error(m));
  if (o.stage === "finetune" && !o.init) throw new Error("finetune: --init <pre-trained MAE folder> is required (the encoder it holds stays frozen)");
  const seed = o.seed;
  const mae = o.init ? ViTMAE.fromPretrained(o.init) : ViTMAE.fromConfig(o.config ?? VIT_MAE_PRESETS.tiny, seed);
  try {
    const size = mae.imageSize;
    const cropBorder = o.cropBorder ?? DEFAULT_CROP_BORDER;
    if (o.val && size - 2 * cropBorder < SSIM_WINDOW) {
      // fail before loading data and training, not at the first validation
      throw new Error(`cropBorder (--crop-border): validation images of ${size}×${size} are ${size - 2 * cropBorder}×${size - 2 * cropBorder} after cropping ${cropBorder} px at each border, smaller than the ${SSIM_WINDOW}×${SSIM_WINDOW} SSIM window (set --crop-border ${Math.max(0, Math.floor((size - SSIM_WINDOW) / 2))} or less)`);
    }
    const train = await ImageSet.load(o.data, size, { limit: o.limit });
    const val = o.val ? await ImageSet.load(o.val, size, { limit: o.valCount }) : undefined;
    log(`${o.stage}: ${train.length} training images${val ? `, ${val.length} validation images` : ""}; model ${mae.parameterCount()} parameters (encoder ${mae.parameterCount("encoder")}, decoder ${mae.parameterCount("decoder")})`);
    if (train.length < o.batchSize) throw new Error(`${o.data}: ${train.length} images, fewer than the batch size ${o.batchSize}`);

    const maskRatio = o.maskRatio ?? mae.config.mask_ratio;
    const normPixLoss = o.normPixLoss ?? mae.config.norm_pix_loss;
    const task = o.stage === "pretrain" ? maePretrainTask(mae, { maskRatio, normPixLoss }) : o.stage === "autoencode" ? maeAutoencodeTask(mae) : maeDecoderFinetuneTask(mae);
    const data = maeBatches(train, { batchSize: o.batchSize, seed, flip: o.flip, noisePatches: o.stage === "pretrain" ? mae.numPatches : 0 });
    mkdirSync(o.out, { recursive: true });

    const runConfig: JsonValue = {
      stage: o.stage,
      model: mae.config as unknown as JsonValue,
      init: o.init ?? null,
      data: o.data,
      steps: o.steps,
      batchSize: o.batchSize,
      gradAccum: o.gradAccum,
      lr: o.lr,
      warmup: o.warmup ?? null,
      schedule: o.schedule,
      seed,
      maskRatio: o.stage === "pretrain" ? maskRatio : 0,
      normPixLoss: o.stage === "pretrain" ? normPixLoss : false,
      flip: o.flip,
    };
    const validate = val
      ? async () => {
          const s = await evaluateReconstruction(mae, val, { cropBorder });
          return { metric: -s.psnr, psnr: s.psnr, ssim: s.ssim };
        }
      : undefined;
    const ort = o.gradients ? await o.gradients(mae, task.variables, { stage: o.stage, batchSize: o.batchSize, maskRatio, normPixLoss }) : undefined;
    log(`gradient engine: ${ort ? ort.name : "tfjs"}`);
    let done = 0; // steps run by this call (a resumed run starts later)
    const trainer = new Trainer<MaeBatch>({
      variables: task.variables,
      ...(ort ? { gradients: ort.gradients } : { loss: task.loss }),
      metricsFile: join(o.out, "metrics.jsonl"),
      data,
      totalSteps: o.steps,
      seed,
      optimizer: { lr: o.lr, beta1: 0.9, beta2: 0.95, weightDecay: o.weightDecay },
      schedule: { kind: o.schedule, warmupSteps: o.warmup },
      clipNorm: o.clipNorm,
      accumulate: o.gradAccum,
      batchSize: o.batchSize,
      checkpointDir: o.checkpointDir ?? join(o.out, "checkpoints"),
      checkpointEvery: o.checkpointEvery,
      resume: o.resume,
      upgradeLegacy: legacyMaeTensor,
      validate,
      validateEvery: o.valEvery,
      config: runConfig,
      progress: o.progress,
      lossPlot: join(o.out, "loss.svg"),
      signal: o.signal,
      handleSigint: o.handleSigint,
      onStep: (entry, t) => {
        done += 1;
        return o.onStep?.(entry, t);
      },
    });
    const t0 = performance.now();
    let result: TrainResult;
    try {
      result = await trainer.run();
    } finally {
      trainer.dispose();
      await ort?.release();
    }
    const seconds = (performance.now() - t0) / 1000;
    const tail = result.history.slice(-Math.min(20, result.history.length));
    const finalLoss = tail.reduce((a, h) => a + h.loss, 0) / Math.max(1, tail.length);
    const base: MaeTrainResult = {
      status: result.status,
      steps: result.step,
      finalLoss,
      validation: result.validation,
      seconds,
      imagesPerSecond: seconds > 0 ? (done * o.batchSize * o.gradAccum) / seconds : 0,
      model: mae,
    };
    if (result.status !== "completed") {
      log(`stopped at step ${result.step}: resume with --resume; no model written to ${o.out}`);
      return base;
    }
    mae.save(o.out, { dtype: o.dtype });
    if (result.history.length > 1) writeLossPlot(join(o.out, "loss.svg"), result.history, result.validation);
    const shown = o.samplesFrom ? await ImageSet.load(o.samplesFrom, size, { limit: o.samples }) : (val ?? train);
    const rows = Math.min(o.samples, shown.length);
    if (rows > 0) {
      const px = shown.tensor(Array.from({ length: rows }, (_, i) => i));
      const grid = sampleGrid(mae, px, { maskRatio: o.stage === "pretrain" ? maskRatio : 0, seed, normPixLoss });
      px.dispose();
      await writeImage(join(o.out, "samples.png"), grid);
    }
    const last = result.validation[result.validation.length - 1];
    const score = last && val ? { psnr: last.values.psnr, ssim: last.values.ssim, count: val.length } : undefined;
    return { ...base, score, modelDir: o.out };
  } catch (e) {
    mae.dispose();
    throw e;
  }
}
