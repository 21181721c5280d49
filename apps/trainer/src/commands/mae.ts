/**
 * pnpm train mae --stage pretrain|finetune|autoencode --data DIR --out DIR [...]
 * Parses options and hands them to @lm4lv/pipeline's trainMae.
 */
import { initBackend } from "@lm4lv/core";
import { maeTrainingConfig, ortAvailable, trainMae, MAE_PRESET_NAMES } from "@lm4lv/pipeline";
import { parseOptions, usage } from "../options.js";
import type { OptionSpecs } from "../options.js";

const SPECS: OptionSpecs = {
  stage: { type: "string", default: "pretrain", help: "pretrain (masked, all weights) | finetune (spec §6: decoder only, encoder frozen, no masking) | autoencode (no masking, L1, encoder and decoder)" },
  data: { type: "string", help: "folder of training images (resized to the model's image size)" },
  val: { type: "string", help: "folder of validation images: reconstruction PSNR/SSIM (unmasked)" },
  out: { type: "string", help: "output folder: config.json, model.safetensors, loss.svg, loss.csv, samples.png, checkpoints/" },
  init: { type: "string", help: "HF MAE folder to start from (required for finetune)" },
  preset: { type: "string", default: "tiny", help: `architecture for a random start: ${MAE_PRESET_NAMES.join(" | ")}` },
  imageSize: { type: "integer", help: "override of the preset's image_size" },
  patchSize: { type: "integer", help: "override: patch_size" },
  hiddenSize: { type: "integer", help: "override: hidden_size" },
  numLayers: { type: "integer", help: "override: num_hidden_layers" },
  numHeads: { type: "integer", help: "override: num_attention_heads" },
  intermediateSize: { type: "integer", help: "override: intermediate_size" },
  decoderHiddenSize: { type: "integer", help: "override: decoder_hidden_size" },
  decoderLayers: { type: "integer", help: "override: decoder_num_hidden_layers" },
  decoderHeads: { type: "integer", help: "override: decoder_num_attention_heads" },
  decoderIntermediateSize: { type: "integer", help: "override: decoder_intermediate_size" },
  layerNormEps: { type: "number", help: "override: layer_norm_eps" },
  maskRatio: { type: "number", help: "pre-training mask ratio (default: the config's mask_ratio)" },
  normPixLoss: { type: "boolean", help: "pre-training target standardised per patch (default: the config's norm_pix_loss)" },
  steps: { type: "integer", default: 1000, help: "optimisation steps" },
  batchSize: { type: "integer", default: 32, help: "images per micro-batch" },
  gradAccum: { type: "integer", default: 1, help: "micro-batches per step" },
  lr: { type: "number", default: 1.5e-3, help: "peak learning rate (Adam β 0.9, 0.95)" },
  warmup: { type: "integer", help: "warmup steps (default max(10, 10 % of steps), spec §7)" },
  schedule: { type: "string", default: "warmup-linear", help: "warmup-linear | cosine | constant" },
  clip: { type: "number", default: 1.0, help: "max global gradient norm (0: no clipping)" },
  weightDecay: { type: "number", default: 0, help: "decoupled weight decay" },
  seed: { type: "integer", default: 0, help: "seed of the initialisation, data order, flips and masking" },
  flip: { type: "boolean", default: true, help: "random left-right flips" },
  limit: { type: "integer", default: 0, help: "use at most this many training images (0: all)" },
  valEvery: { type: "integer", default: 100, help: "validate every n steps (and at the end)" },
  valCount: { type: "integer", default: 64, help: "validation images used" },
  checkpointEvery: { type: "integer", default: 50, help: "save <out>/checkpoints/last.safetensors every n steps" },
  checkpointDir: { type: "string", help: "checkpoint folder (default <out>/checkpoints)" },
  resume: { type: "boolean", default: false, help: "continue from <out>/checkpoints/last.safetensors" },
  dtype: { type: "string", default: "f32", help: "dtype of the written model.safetensors: f32 | f16" },
  samples: { type: "integer", default: 8, help: "rows of samples.png (input | reconstruction)" },
  samplesFrom: { type: "string", help: "folder whose first images make samples.png (default: --val, else --data)" },
  backend: { type: "string", help: "tfjs backend (tensorflow | wasm | cpu); default: the fastest available" },
  engine: { type: "string", help: "gradient engine: ort (default when onnxruntime-node loads) | tfjs" },
  threads: { type: "integer", help: "ONNX Runtime threads with --engine ort (default: the number of cores)" },
};

const SUMMARY = `MAE pre-training (random masking, HF ViTMAEForPreTraining loss) or decoder fine-tuning
(spec §6: encoder frozen, mask ratio 0, identity order, loss = L1 between the de-normalised
reconstruction and the [0,1] image; the LPIPS term is not available here, so this is the
L1-only variant). Writes an HF folder to --out. Ctrl-C stops after the current step and saves.`;

const num = (v: unknown) => (typeof v === "number" ? v : undefined);

export async function maeCommand(argv: string[]): Promise<number> {
  const { options: o, positionals, help } = parseOptions(argv, SPECS);
  if (help) {
    console.log(usage("mae", SUMMARY, SPECS));
    return 0;
  }
  if (positionals.length) throw new Error(`unexpected argument "${positionals[0]}" (see pnpm train mae --help)`);
  if (!o.data) throw new Error("--data <folder of images> is required");
  if (!o.out) throw new Error("--out <folder> is required");
  const stage = String(o.stage);
  if (stage !== "pretrain" && stage !== "finetune" && stage !== "autoencode") throw new Error(`--stage must be pretrain, finetune or autoencode, got "${stage}"`);
  const dtype = String(o.dtype);
  if (dtype !== "f32" && dtype !== "f16") throw new Error(`--dtype must be f32 or f16, got "${dtype}"`);
  const schedule = String(o.schedule);
  if (!["warmup-linear", "cosine", "constant"].includes(schedule)) throw new Error(`--schedule must be warmup-linear, cosine or constant, got "${schedule}"`);

  const engineArg = o.engine as string | undefined;
  if (engineArg !== undefined && engineArg !== "ort" && engineArg !== "tfjs") throw new Error(`--engine must be ort or tfjs, got "${engineArg}"`);
  const ortLoads = await ortAvailable();
  if (engineArg === "ort" && !ortLoads) throw new Error("--engine ort: onnxruntime-node does not load on this machine");
  const engine = engineArg ?? (ortLoads ? "ort" : "tfjs");

  const backend = await initBackend(o.backend as string | undefined);
  const config = o.init
    ? undefined
    : maeTrainingConfig(String(o.preset), {
        image_size: num(o.imageSize),
        patch_size: num(o.patchSize),
        hidden_size: num(o.hiddenSize),
        num_hidden_layers: num(o.numLayers),
        num_attention_heads: num(o.numHeads),
        intermediate_size: num(o.intermediateSize),
        decoder_hidden_size: num(o.decoderHiddenSize),
        decoder_num_hidden_layers: num(o.decoderLayers),
        decoder_num_attention_heads: num(o.decoderHeads),
        decoder_intermediate_size: num(o.decoderIntermediateSize),
        layer_norm_eps: num(o.layerNormEps),
        mask_ratio: num(o.maskRatio),
      });
  console.error(`backend: ${backend}`);
  const result = await trainMae({
    stage,
    data: String(o.data),
    val: o.val as string | undefined,
    out: String(o.out),
    init: o.init as string | undefined,
    config,
    steps: o.steps as number,
    batchSize: o.batchSize as number,
    gradAccum: o.gradAccum as number,
    lr: o.lr as number,
    warmup: num(o.warmup),
    schedule: schedule as "warmup-linear" | "cosine" | "constant",
    clipNorm: (o.clip as number) > 0 ? (o.clip as number) : null,
    weightDecay: o.weightDecay as number,
    seed: o.seed as number,
    maskRatio: num(o.maskRatio),
    normPixLoss: o.normPixLoss as boolean | undefined,
    flip: o.flip as boolean,
    limit: o.limit as number,
    valEvery: o.valEvery as number,
    valCount: o.valCount as number,
    checkpointEvery: o.checkpointEvery as number,
    checkpointDir: o.checkpointDir as string | undefined,
    resume: o.resume as boolean,
    dtype,
    samples: o.samples as number,
    samplesFrom: o.samplesFrom as string | undefined,
    engine,
    threads: o.threads as number | undefined,
  });
  try {
    const score = result.score ? `; val PSNR ${result.score.psnr.toFixed(2)} dB SSIM ${result.score.ssim.toFixed(4)} (${result.score.count} images)` : "";
    console.log(
      `${stage} ${result.status} at step ${result.steps}: final loss ${result.finalLoss.toPrecision(4)}${score}; ` +
        `${result.seconds.toFixed(0)} s, ${result.imagesPerSecond.toFixed(1)} images/s` +
        (result.modelDir ? `; wrote ${result.modelDir}` : ""),
    );
    return result.status === "completed" ? 0 : 130;
  } finally {
    result.model.dispose();
  }
}
