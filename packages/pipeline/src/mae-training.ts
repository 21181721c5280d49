/**
 * Training glue for the MAE (`pnpm train mae`): a folder of images held in memory as
 * pixel batches, the masked pre-training task (HF `ViTMAEForPreTraining` loss), the
 * spec §6 decoder fine-tuning task (encoder frozen, no masking, L1 on de-normalised
 * reconstructions), reconstruction PSNR/SSIM over a folder, sample grids, and the
 * whole run (`trainMae`) on top of `@lm4lv/train`'s Trainer.
 *
 * Randomness (masking noise, flips, epoch order) comes only from the trainer's seeded
 * RNG and the batch iterator, both saved in checkpoints, so a resumed run is exact.
 *
 * Two gradient engines compute the same loss: tfjs autodiff (`MaeTask.loss`) or ONNX Runtime
 * (`ortMaeGradients`: the training graphs of `@lm4lv/onnx`, fed the variables each step). The
 * optimiser, clipping, accumulation and checkpoints are the trainer's either way.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { readImage, writeImage } from "@lm4lv/core";
import type { RgbImage } from "@lm4lv/core";
import { ViTMAE, IMAGENET_MEAN, IMAGENET_STD, decoderFinetuneLoss, normalizeImageNet, denormalizeImageNet, patchify, unpatchify, tensorToImages, parseViTMAEConfig, vitMAEPreset, VIT_MAE_PRESETS } from "@lm4lv/mae";
import type { ViTMAEConfig } from "@lm4lv/mae";
import { ShuffledBatches, TrainRng, Trainer, imageGrid, transposeTensorData, writeLossPlot } from "@lm4lv/train";
import type { GradientFn, HistoryEntry, JsonValue, ProgressOptions, ScheduleKind, TrainResult, ValidationEntry } from "@lm4lv/train";
import { listImages } from "@lm4lv/data";
import { psnr, ssim } from "@lm4lv/metrics";

// --- Configurations ----------------------------------------------------------------------------

/** The embedded default MAE: 64 px images, 8 px patches, a 6-layer 192-wide encoder, a 4-layer 128-wide decoder (≈3.6 M parameters). */
export const MAE_TINY_CONFIG: ViTMAEConfig = {
  model_type: "vit_mae",
  architectures: ["ViTMAEForPreTraining"],
  hidden_size: 192,
  num_hidden_layers: 6,
  num_attention_heads: 6,
  intermediate_size: 768,
  hidden_act: "gelu",
  layer_norm_eps: 1e-6,
  image_size: 64,
  patch_size: 8,
  num_channels: 3,
  qkv_bias: true,
  decoder_hidden_size: 128,
  decoder_num_hidden_layers: 4,
  decoder_num_attention_heads: 4,
  decoder_intermediate_size: 512,
  mask_ratio: 0.75,
  norm_pix_loss: false,
  initializer_range: 0.02,
};

export const MAE_PRESET_NAMES = ["tiny", ...Object.keys(VIT_MAE_PRESETS)] as const;

/** A named preset ("tiny" or one of `@lm4lv/mae`'s) with field overrides, validated. */
export function maeTrainingConfig(preset: string, overrides: Partial<ViTMAEConfig> = {}): ViTMAEConfig {
  const clean = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<ViTMAEConfig>;
  if (preset === "tiny") return parseViTMAEConfig({ ...structuredClone(MAE_TINY_CONFIG), ...clean } as Record<string, unknown>, "preset tiny");
  if (!(preset in VIT_MAE_PRESETS)) throw new Error(`unknown MAE preset "${preset}" (expected one of ${MAE_PRESET_NAMES.join(", ")})`);
  return vitMAEPreset(preset as keyof typeof VIT_MAE_PRESETS, clean);
}

// --- Images in memory --------------------------------------------------------------------------

/** A folder of images resized (bicubic) to one square size, kept as CHW float32 in [0,1]. */
export class ImageSet {
  private constructor(
    readonly files: string[],
    readonly size: number,
    /** `[count, 3, size, size]` flattened. */
    readonly data: Float32Array,
  ) {}

  static async load(dir: string, size: number, opts: { limit?: number } = {}): Promise<ImageSet> {
    let names = listImages(dir);
    if (opts.limit !== undefined && opts.limit > 0) names = names.slice(0, opts.limit);
    const plane = 3 * size * size;
    const data = new Float32Array(names.length * plane);
    const files = names.map((n) => join(dir, n));
    for (let i = 0; i < files.length; i++) {
      const img = await readImage(files[i], { size });
      const hw = size * size;
      for (let p = 0; p < hw; p++) {
        data[i * plane + p] = img.data[3 * p];
        data[i * plane + hw + p] = img.data[3 * p + 1];
        data[i * plane + 2 * hw + p] = img.data[3 * p + 2];
      }
    }
    return new ImageSet(files, size, data);
  }

  get length(): number {
    return this.files.length;
  }

  /** CHW pixels of the items, each mirrored left-right where `flips[i]`. */
  gather(indices: number[], flips?: boolean[]): Float32Array {
    const s = this.size;
    const plane = 3 * s * s;
    const out = new Float32Array(indices.length * plane);
    indices.forEach((idx, i) => {
      if (!Number.isInteger(idx) || idx < 0 || idx >= this.length) throw new RangeError(`ImageSet.gather: index ${idx} out of range [0, ${this.length})`);
      const src = this.data.subarray(idx * plane, (idx + 1) * plane);
      if (!flips?.[i]) {
        out.set(src, i * plane);
        return;
      }
      for (let row = 0; row < 3 * s; row++) {
        const base = row * s;
        for (let x = 0; x < s; x++) out[i * plane + base + x] = src[base + s - 1 - x];
      }
    });
    return out;
  }

  /** `[n, 3, S, S]` in [0,1]. */
  tensor(indices: number[]): tf.Tensor4D {
    return tf.tensor4d(this.gather(indices), [indices.length, 3, this.size, this.size]);
  }
}

/** One (micro-)batch: pixels in [0,1] (CHW, flattened) and, for masking, `[count, N]` sorting noise. */
export interface MaeBatch {
  pixels01: Float32Array;
  count: number;
  size: number;
  noise: Float32Array | null;
}

export interface MaeBatchOptions {
  batchSize: number;
  /** Seed of the per-epoch orders. */
  seed: number;
  /** Random left-right flips (drawn from the trainer RNG). Default true. */
  flip?: boolean;
  /** Patches per image when masking noise is needed (pre-training); 0/undefined: no noise. */
  noisePatches?: number;
}

/** Shuffled batches over an ImageSet; flips and masking noise come from the trainer's RNG. */
export function maeBatches(set: ImageSet, opts: MaeBatchOptions): ShuffledBatches<MaeBatch> {
  return new ShuffledBatches<MaeBatch>({
    size: set.length,
    batchSize: opts.batchSize,
    seed: opts.seed,
    load: (indices: number[], rng: TrainRng) => {
      const flips = indices.map(() => (opts.flip ?? true) && rng.uniform() < 0.5);
      const n = opts.noisePatches ?? 0;
      const noise = n > 0 ? Float32Array.from({ length: indices.length * n }, () => rng.uniform()) : null;
      return { pixels01: set.gather(indices, flips), count: indices.length, size: set.size, noise };
    },
  });
}

function batchPixels01(b: MaeBatch): tf.Tensor4D {
  return tf.tensor4d(b.pixels01, [b.count, 3, b.size, b.size]);
}

/** `normalizeImageNet` of the batch on the host, `[count, 3, S, S]` flat, rounded to float32 as tfjs computes it. */
function batchNormalised(b: MaeBatch): Float32Array {
  const hw = b.size * b.size;
  const out = new Float32Array(b.pixels01.length);
  for (let i = 0; i < b.count; i++) {
    for (let c = 0; c < 3; c++) {
      const mean = Math.fround(IMAGENET_MEAN[c]);
      const std = Math.fround(IMAGENET_STD[c]);
      const off = (i * 3 + c) * hw;
      for (let k = off; k < off + hw; k++) out[k] = Math.fround(b.pixels01[k] - mean) / std;
    }
  }
  return out;
}

// --- Tasks ---------------------------------------------------------------------------------------

/** Parameters that MAE pre-training keeps fixed (sin-cos position embeddings, as in the MAE code). */
export const FIXED_PRETRAIN_PARAMETERS = ["vit.embeddings.position_embeddings", "decoder.decoder_pos_embed"] as const;

/** The model's parameters selected by `select` as trainable `tf.Variable`s (HF layout), by HF name. */
export function makeTrainable(mae: ViTMAE, select: (name: string) => boolean): Record<string, tf.Variable> {
  return mae.trainableParameters(select);
}

export interface MaeTask {
  variables: Record<string, tf.Variable>;
  /** Mean loss over the batch (the tensors it makes live inside the trainer's gradient scope). */
  loss: (batch: MaeBatch) => { loss: tf.Scalar; parts: Record<string, tf.Scalar> };
}

/** Masked pre-training: HF loss (MSE on removed patches, optional norm-pix target); noise from the batch. */
export function maePretrainTask(mae: ViTMAE, opts: { maskRatio?: number; normPixLoss?: boolean } = {}): MaeTask {
  const fixed = new Set<string>(FIXED_PRETRAIN_PARAMETERS);
  const variables = makeTrainable(mae, (n) => !fixed.has(n));
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
  const variables = makeTrainable(mae, (n) => !fixed.has(n));
  return {
    variables,
    loss: (batch) => {
      const target01 = batchPixels01(batch); // [B, 3, S, S]
      const recon = mae.decodeSync(mae.encodeSync(normalizeImageNet(target01))); // [B, 3, S, S] normalised
      return { loss: decoderFinetuneLoss(recon, target01), parts: {} };
    },
  };
}

/** Where the gradients come from: ONNX Runtime training graphs or tfjs autodiff. */
export type MaeEngine = "ort" | "tfjs";

export interface OrtMaeGradientOptions {
  stage: MaeStage;
  /** Images per micro-batch: the training graph's static batch size. */
  batchSize: number;
  /** Pre-training mask ratio (default: the config's). */
  maskRatio?: number;
  /** Pre-training norm-pix target (default: the config's). */
  normPixLoss?: boolean;
  /** ONNX Runtime intra-op threads (default: the number of cores). */
  threads?: number;
}

/**
 * The task's loss and gradients on ONNX Runtime: the pre-training graph (normalised pixels and
 * masking from `batch.noise`, as `maePretrainTask`) or the spec §6 fine-tuning graph (pixels in
 * [0,1], as `maeDecoderFinetuneTask`), built once for `batchSize` and fed the current values of
 * `variables` (the task's, by HF name) every call. `release` frees the session.
 */
export async function ortMaeGradients(mae: ViTMAE, variables: Record<string, tf.Variable>, opts: OrtMaeGradientOptions): Promise<{ gradients: GradientFn<MaeBatch>; release: () => Promise<void> }> {
  const onnx = await import("@lm4lv/onnx");
  const { Tensor } = await import("onnxruntime-node");
  const trainable = Object.keys(variables);
  const b = opts.batchSize;
  const n = mae.numPatches;
  const maskRatio = opts.maskRatio ?? mae.config.mask_ratio;
  const graph =
    opts.stage === "pretrain"
      ? onnx.buildMaePretrainGraph(mae, { batch: b, maskRatio, normPixLoss: opts.normPixLoss, trainable })
      : onnx.buildMaeFinetuneGraph(mae, { batch: b, trainable, trainEncoder: opts.stage === "autoencode" });
  const session = await onnx.OrtTrainingSession.create(graph, { intraOpThreads: opts.threads });
  const gradients: GradientFn<MaeBatch> = async (batch) => {
    if (batch.count !== b) throw new Error(`ORT MAE engine: a micro-batch of ${batch.count} images, the training graph was built for ${b}`);
    const shape = [b, 3, batch.size, batch.size];
    let feeds: Record<string, InstanceType<typeof Tensor>>;
    if (opts.stage === "pretrain") {
      if (!batch.noise || batch.noise.length !== b * n) throw new Error(`ORT MAE engine: pre-training needs [${b}, ${n}] masking noise in the batch`);
      feeds = { pixel_values: new Tensor("float32", batchNormalised(batch), shape), ...onnx.maeMaskingFeeds(batch.noise, b, n, maskRatio) };
    } else {
      feeds = { [onnx.MAE_FINETUNE_INPUT]: new Tensor("float32", batch.pixels01, shape) };
    }
    const params = Object.fromEntries(session.params.map((name) => [name, { data: variables[name].dataSync() as Float32Array, shape: variables[name].shape }]));
    return session.run(params, feeds);
  };
  return { gradients, release: () => session.release() };
}

// --- Evaluation and pictures --------------------------------------------------------------------

/** Encode (no masking) + decode → images in [0,1], clamped. */
export function reconstructImages(mae: ViTMAE, pixels01: tf.Tensor4D, batchSize = 16): RgbImage[] {
  const out: RgbImage[] = [];
  const b = pixels01.shape[0];
  for (let i = 0; i < b; i += batchSize) {
    const recon01 = tf.tidy(() => {
      const chunk = tf.slice(pixels01, [i, 0, 0, 0], [Math.min(batchSize, b - i), -1, -1, -1]) as tf.Tensor4D; // [b, 3, S, S]
      const feats = mae.encodeSync(normalizeImageNet(chunk)); // [b, 1+N, D]
      return denormalizeImageNet(mae.decodeSync(feats)); // [b, 3, S, S]
    });
    out.push(...tensorToImages(recon01));
    recon01.dispose();
  }
  return out;
}

export interface ReconstructionScore {
  /** Mean PSNR (dB) and SSIM over the images (spec §9: RGB, 8-bit, crop border). */
  psnr: number;
  ssim: number;
  count: number;
}

/** Reconstruction PSNR/SSIM of an image set (or a folder, resized to the model size). */
export async function evaluateReconstruction(mae: ViTMAE, images: ImageSet | string, opts: { cropBorder?: number; limit?: number; batchSize?: number } = {}): Promise<ReconstructionScore> {
  const set = typeof images === "string" ? await ImageSet.load(images, mae.imageSize, { limit: opts.limit }) : images;
  const count = Math.min(set.length, opts.limit && opts.limit > 0 ? opts.limit : set.length);
  const indices = Array.from({ length: count }, (_, i) => i);
  const input = set.tensor(indices);
  const originals = tensorToImages(input);
  const recons = reconstructImages(mae, input, opts.batchSize);
  input.dispose();
  const cropBorder = opts.cropBorder ?? 4;
  let p = 0;
  let s = 0;
  for (let i = 0; i < count; i++) {
    p += psnr(originals[i], recons[i], { cropBorder });
    s += ssim(originals[i], recons[i], { cropBorder });
  }
  return { psnr: p / count, ssim: s / count, count };
}

/**
 * A sample grid, one row per image: input | reconstruction (no masking); with `maskRatio` > 0
 * also the masked input and the masked prediction with the visible patches pasted back.
 */
export function sampleGrid(mae: ViTMAE, pixels01: tf.Tensor4D, opts: { maskRatio?: number; seed?: number; normPixLoss?: boolean } = {}): RgbImage {
  const inputs = tensorToImages(pixels01);
  const recons = reconstructImages(mae, pixels01);
  const rows: RgbImage[][] = inputs.map((im, i) => [im, recons[i]]);
  const labels: string[][] = inputs.map(() => ["INPUT", "RECON"]);
  const ratio = opts.maskRatio ?? 0;
  if (ratio > 0) {
    const b = pixels01.shape[0];
    const rng = new TrainRng(opts.seed ?? 0);
    const noise = tf.tensor2d(Float32Array.from({ length: b * mae.numPatches }, () => rng.uniform()), [b, mae.numPatches]);
    const [masked, pasted] = tf.tidy(() => {
      const p = mae.patchSize;
      const pixels = normalizeImageNet(pixels01);
      const out = mae.forward(pixels, { noise, maskRatio: ratio });
      const target = patchify(pixels, p); // [B, N, P]
      let pred: tf.Tensor = out.logits; // [B, N, P]
      if (opts.normPixLoss ?? mae.config.norm_pix_loss) {
        const { mean, variance } = tf.moments(target, -1, true);
        const n = target.shape[2];
        pred = tf.add(tf.mul(pred, tf.sqrt(tf.add(tf.mul(variance, n / (n - 1)), 1e-6))), mean);
      }
      const removed = tf.expandDims(out.mask, -1); // [B, N, 1]
      const kept = tf.sub(1, removed);
      const gray = tf.mul(target, kept); // removed patches → 0 = the mean colour
      const paste = tf.add(tf.mul(pred, removed), tf.mul(target, kept));
      const toImg = (x: tf.Tensor) => tf.clipByValue(denormalizeImageNet(unpatchify(x as tf.Tensor3D, p, 3)), 0, 1);
      return [toImg(gray), toImg(paste)] as tf.Tensor4D[];
    });
    noise.dispose();
    const mImgs = tensorToImages(masked);
    const pImgs = tensorToImages(pasted);
    masked.dispose();
    pasted.dispose();
    rows.forEach((r, i) => r.push(mImgs[i], pImgs[i]));
    labels.forEach((l) => l.push("MASKED", "PRED"));
  }
  return imageGrid(rows, labels);
}

// --- Saving --------------------------------------------------------------------------------------

/** Writes an HF folder: `config.json` + `model.safetensors` (F32, or F16 with `dtype: "f16"`). */
export function saveMaeModel(mae: ViTMAE, dir: string, opts: { dtype?: "f32" | "f16" } = {}): void {
  mae.save(dir, opts);
}

// --- A whole run ---------------------------------------------------------------------------------

export type MaeStage = "pretrain" | "finetune" | "autoencode";

export interface MaeTrainOptions {
  stage: MaeStage;
  /** Folder of training images (resized to the model's image size). */
  data: string;
  /** Folder of validation images (PSNR/SSIM of the unmasked reconstruction). */
  val?: string;
  /** Output folder: the HF model, loss.svg + loss.csv, samples.png (and checkpoints/ unless `checkpointDir`). */
  out: string;
  /** Checkpoint folder. Default `<out>/checkpoints`. */
  checkpointDir?: string;
  /** HF MAE folder to start from (required for "finetune"). */
  init?: string;
  /** Model configuration for a random start (pre-training without `init`). Default MAE_TINY_CONFIG. */
  config?: ViTMAEConfig;
  steps: number;
  batchSize: number;
  gradAccum?: number;
  /** Peak learning rate. */
  lr: number;
  /** Warmup steps (default: spec §7, max(10, 10 %)). */
  warmup?: number;
  schedule?: ScheduleKind;
  clipNorm?: number | null;
  weightDecay?: number;
  seed?: number;
  /** Pre-training mask ratio; default: the config's. */
  maskRatio?: number;
  normPixLoss?: boolean;
  flip?: boolean;
  /** Use at most this many training images (0: all). */
  limit?: number;
  valEvery?: number;
  /** Validate on at most this many images of `val`. Default 64. */
  valCount?: number;
  cropBorder?: number;
  checkpointEvery?: number;
  resume?: boolean;
  dtype?: "f32" | "f16";
  /** Rows of samples.png. Default 8. */
  samples?: number;
  /** Folder whose first images make samples.png. Default: `val`, else `data`. */
  samplesFrom?: string;
  /** Gradient engine: "ort" (ONNX Runtime training graphs) or "tfjs" (autodiff). Default "tfjs". */
  engine?: MaeEngine;
  /** ONNX Runtime intra-op threads with engine "ort" (default: the number of cores). */
  threads?: number;
  progress?: boolean | ProgressOptions;
  signal?: AbortSignal;
  handleSigint?: boolean;
  onStep?: (entry: HistoryEntry, trainer: Trainer<MaeBatch>) => void | Promise<void>;
  log?: (message: string) => void;
}

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
export async function trainMae(o: MaeTrainOptions): Promise<MaeTrainResult> {
  const log = o.log ?? ((m: string) => console.error(m));
  if (o.stage !== "pretrain" && o.stage !== "finetune" && o.stage !== "autoencode") throw new Error(`stage must be "pretrain", "finetune" or "autoencode", got "${o.stage}"`);
  if (o.stage === "finetune" && !o.init) throw new Error("finetune: --init <pre-trained MAE folder> is required (the encoder it holds stays frozen)");
  const engine = o.engine ?? "tfjs";
  if (engine !== "ort" && engine !== "tfjs") throw new Error(`engine must be "ort" or "tfjs", got "${engine}"`);
  const seed = o.seed ?? 0;
  const mae = o.init ? ViTMAE.fromPretrained(o.init) : ViTMAE.fromConfig(o.config ?? MAE_TINY_CONFIG, seed);
  try {
    const size = mae.imageSize;
    const train = await ImageSet.load(o.data, size, { limit: o.limit });
    const val = o.val ? await ImageSet.load(o.val, size, { limit: o.valCount ?? 64 }) : undefined;
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
      gradAccum: o.gradAccum ?? 1,
      lr: o.lr,
      warmup: o.warmup ?? null,
      schedule: o.schedule ?? "warmup-linear",
      seed,
      maskRatio: o.stage === "pretrain" ? maskRatio : 0,
      normPixLoss: o.stage === "pretrain" ? normPixLoss : false,
      flip: o.flip ?? true,
    };
    const validate = val
      ? async () => {
          const s = await evaluateReconstruction(mae, val, { cropBorder: o.cropBorder });
          return { metric: -s.psnr, psnr: s.psnr, ssim: s.ssim };
        }
      : undefined;
    const ort =
      engine === "ort"
        ? await ortMaeGradients(mae, task.variables, { stage: o.stage, batchSize: o.batchSize, maskRatio, normPixLoss, threads: o.threads })
        : undefined;
    log(`gradient engine: ${ort ? "onnxruntime" : "tfjs"}`);
    let done = 0; // steps run by this call (a resumed run starts later)
    const trainer = new Trainer<MaeBatch>({
      variables: task.variables,
      ...(ort ? { gradients: ort.gradients } : { loss: task.loss }),
      metricsFile: join(o.out, "metrics.jsonl"),
      data,
      totalSteps: o.steps,
      seed,
      optimizer: { lr: o.lr, beta1: 0.9, beta2: 0.95, weightDecay: o.weightDecay ?? 0 },
      schedule: { kind: o.schedule ?? "warmup-linear", warmupSteps: o.warmup },
      clipNorm: o.clipNorm === undefined ? 1.0 : o.clipNorm,
      accumulate: o.gradAccum ?? 1,
      batchSize: o.batchSize,
      checkpointDir: o.checkpointDir ?? join(o.out, "checkpoints"),
      checkpointEvery: o.checkpointEvery ?? 100,
      resume: o.resume ?? false,
      // lm4lv-train/1 checkpoints held the MAE's Linear weights (its 2-D tensors) as [in, out] kernels
      upgradeLegacy: (name, t) => [name, t.shape.length === 2 ? transposeTensorData(t) : t],
      validate,
      validateEvery: o.valEvery ?? 0,
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
      imagesPerSecond: seconds > 0 ? (done * o.batchSize * (o.gradAccum ?? 1)) / seconds : 0,
      model: mae,
    };
    if (result.status !== "completed") {
      log(`stopped at step ${result.step}: resume with --resume; no model written to ${o.out}`);
      return base;
    }
    saveMaeModel(mae, o.out, { dtype: o.dtype });
    if (result.history.length > 1) writeLossPlot(join(o.out, "loss.svg"), result.history, result.validation);
    const shown = o.samplesFrom ? await ImageSet.load(o.samplesFrom, size, { limit: o.samples ?? 8 }) : (val ?? train);
    const rows = Math.min(o.samples ?? 8, shown.length);
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

/** The parameters whose names start with `prefix`, as F32 arrays (for checks such as "the encoder did not move"). */
export function snapshotParameters(mae: ViTMAE, prefix = ""): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of mae.namedParameters()) if (name.startsWith(prefix)) out[name] = Float32Array.from(t.dataSync() as Float32Array);
  return out;
}
