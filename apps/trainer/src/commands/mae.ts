/**
 * pnpm train mae --stage pretrain|finetune|autoencode --data DIR --out DIR [...]
 * Parses options and hands them to @lm4lv/mae's trainMae (ONNX Runtime gradients from @lm4lv/onnx).
 */
import { initBackend } from "@lm4lv/core";
import { trainMae, vitMAEPreset, VIT_MAE_PRESETS } from "@lm4lv/mae";
import type { MaeGradientEngine, MaeTrainOptions, ViTMAEConfig, ViTMAEPresetName } from "@lm4lv/mae";
import { parseOptions, usage } from "../options.js";
import type { OptionSpecs } from "../options.js";
import { checkChoice, chooseEngine } from "../engine.js";

const MAE_PRESET_NAMES = Object.keys(VIT_MAE_PRESETS);

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

/** Config overrides: option → HF config.json field. */
const OVERRIDES: Record<string, keyof ViTMAEConfig> = {
  imageSize: "image_size", patchSize: "patch_size", hiddenSize: "hidden_size", numLayers: "num_hidden_layers", numHeads: "num_attention_heads",
  intermediateSize: "intermediate_size", decoderHiddenSize: "decoder_hidden_size", decoderLayers: "decoder_num_hidden_layers",
  decoderHeads: "decoder_num_attention_heads", decoderIntermediateSize: "decoder_intermediate_size", layerNormEps: "layer_norm_eps", maskRatio: "mask_ratio",
};

export async function maeCommand(argv: string[]): Promise<number> {
  const { options: o, positionals, help } = parseOptions(argv, SPECS);
  if (help) {
    console.log(usage("mae", SUMMARY, SPECS));
    return 0;
  }
  if (positionals.length) throw new Error(`unexpected argument "${positionals[0]}" (see pnpm train mae --help)`);
  if (!o.data) throw new Error("--data <folder of images> is required");
  if (!o.out) throw new Error("--out <folder> is required");
  checkChoice("stage", o.stage, ["pretrain", "finetune", "autoencode"]);
  checkChoice("dtype", o.dtype, ["f32", "f16"]);
  checkChoice("schedule", o.schedule, ["warmup-linear", "cosine", "constant"]);
  const engine = await chooseEngine(o.engine);
  const gradients: MaeGradientEngine = async (mae, variables, run) => (await import("@lm4lv/onnx")).ortMaeGradients(mae, variables, { ...run, threads: o.threads as number | undefined });
  const backend = await initBackend(o.backend as string | undefined);
  const overrides = Object.fromEntries(Object.entries(OVERRIDES).map(([flag, field]) => [field, o[flag]]));
  const config = o.init ? undefined : vitMAEPreset(String(o.preset) as ViTMAEPresetName, overrides);
  console.error(`backend: ${backend}`);
  const clip = o.clip as number;
  const result = await trainMae({ ...(o as unknown as MaeTrainOptions), config, clipNorm: clip > 0 ? clip : null, gradients: engine === "ort" ? gradients : undefined });
  try {
    const score = result.score ? `; val PSNR ${result.score.psnr.toFixed(2)} dB SSIM ${result.score.ssim.toFixed(4)} (${result.score.count} images)` : "";
    console.log(
      `${o.stage} ${result.status} at step ${result.steps}: final loss ${result.finalLoss.toPrecision(4)}${score}; ` +
        `${result.seconds.toFixed(0)} s, ${result.imagesPerSecond.toFixed(1)} images/s` +
        (result.modelDir ? `; wrote ${result.modelDir}` : ""),
    );
    return result.status === "completed" ? 0 : 130;
  } finally {
    result.model.dispose();
  }
}
