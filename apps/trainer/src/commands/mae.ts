/**
 * pnpm train mae --stage pretrain|finetune|autoencode --data DIR --out DIR [...]
 * Parses options and hands them to @lm4lv/mae's trainMae (ONNX Runtime gradients from @lm4lv/onnx).
 */
import { z } from "zod";
import { defaultOf, initBackend, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from "@lm4lv/core";
import { MAE_TRAINING_OPTIONS, trainMae, vitMAEPreset, VIT_MAE_PRESETS } from "@lm4lv/mae";
import type { MaeGradientEngine, ViTMAEConfig, ViTMAEPresetName } from "@lm4lv/mae";
import { parseOptions, usage } from "../options.js";
import { chooseEngine } from "../engine.js";

// The run's settings and their defaults are trainMae's (MAE_TRAINING_OPTIONS); this adds the
// architecture of a random start (a preset and overrides) and the engine.
const M = MAE_TRAINING_OPTIONS.shape;
const PRESETS = Object.keys(VIT_MAE_PRESETS) as [ViTMAEPresetName, ...ViTMAEPresetName[]];

export const MAE_OPTIONS = z.object({
  stage: M.stage.describe("pretrain (masked, all weights) | finetune (spec §6: decoder only, encoder frozen, no masking) | autoencode (no masking, L1, encoder and decoder)"),
  data: M.data.describe("folder of training images (resized to the model's image size)"),
  val: M.val.describe("folder of validation images: reconstruction PSNR/SSIM (unmasked)"),
  out: M.out.describe("output folder: config.json, model.safetensors, loss.svg, loss.csv, samples.png, checkpoints/"),
  init: M.init.describe("HF MAE folder to start from (required for finetune)"),
  preset: oneOf(PRESETS).default("tiny").describe("architecture for a random start"),
  imageSize: positiveInt().optional().describe("override of the preset's image_size"),
  patchSize: positiveInt().optional().describe("override: patch_size"),
  hiddenSize: positiveInt().optional().describe("override: hidden_size"),
  numLayers: positiveInt().optional().describe("override: num_hidden_layers"),
  numHeads: positiveInt().optional().describe("override: num_attention_heads"),
  intermediateSize: positiveInt().optional().describe("override: intermediate_size"),
  decoderHiddenSize: positiveInt().optional().describe("override: decoder_hidden_size"),
  decoderLayers: positiveInt().optional().describe("override: decoder_num_hidden_layers"),
  decoderHeads: positiveInt().optional().describe("override: decoder_num_attention_heads"),
  decoderIntermediateSize: positiveInt().optional().describe("override: decoder_intermediate_size"),
  layerNormEps: positiveNumber().optional().describe("override: layer_norm_eps"),
  maskRatio: M.maskRatio.describe("pre-training mask ratio (default: the config's mask_ratio)"),
  normPixLoss: M.normPixLoss.describe("pre-training target standardised per patch (default: the config's norm_pix_loss)"),
  steps: M.steps.describe("optimisation steps"),
  batchSize: M.batchSize.describe("images per micro-batch"),
  gradAccum: M.gradAccum.describe("micro-batches per step"),
  lr: M.lr.describe("peak learning rate (Adam β 0.9, 0.95)"),
  warmup: M.warmup.describe("warmup steps (default max(10, 10 % of steps), spec §7)"),
  schedule: M.schedule.describe("learning-rate schedule"),
  clip: nonNegativeNumber().optional().describe(`max global gradient norm, 0: no clipping (default ${defaultOf(M.clipNorm)})`),
  weightDecay: M.weightDecay.describe("decoupled weight decay"),
  seed: M.seed.describe("seed of the initialisation, data order, flips and masking"),
  flip: M.flip.describe("random left-right flips"),
  limit: M.limit.describe("use at most this many training images (0: all)"),
  valEvery: M.valEvery.describe("validate every n steps (and at the end)"),
  valCount: M.valCount.describe("validation images used"),
  cropBorder: M.cropBorder.describe("pixels cropped at each border before validation PSNR/SSIM (default: the metrics' 4; less for images under 19 px)"),
  checkpointEvery: M.checkpointEvery.describe("save <out>/checkpoints/last.safetensors every n steps"),
  checkpointDir: M.checkpointDir.describe("checkpoint folder (default <out>/checkpoints)"),
  resume: M.resume.describe("continue from <out>/checkpoints/last.safetensors"),
  dtype: M.dtype.describe("dtype of the written model.safetensors"),
  samples: M.samples.describe("rows of samples.png (input | reconstruction)"),
  samplesFrom: M.samplesFrom.describe("folder whose first images make samples.png (default: --val, else --data)"),
  backend: z.string().optional().describe("tfjs backend (tensorflow | wasm | cpu); default: the fastest available"),
  engine: oneOf(["ort", "tfjs"]).optional().describe("gradient engine (default: ort when onnxruntime-node loads, else tfjs)"),
  threads: positiveInt().optional().describe("ONNX Runtime threads with --engine ort (default: the number of cores)"),
});

const SUMMARY = `MAE pre-training (random masking, HF ViTMAEForPreTraining loss) or decoder fine-tuning
(spec §6: encoder frozen, mask ratio 0, identity order, loss = L1 between the de-normalised
reconstruction and the [0,1] image; the LPIPS term is not available here, so this is the
L1-only variant). Writes an HF folder to --out. Ctrl-C stops after the current step and saves.`;

/** Config overrides: option → HF config.json field. */
const OVERRIDES = {
  imageSize: "image_size", patchSize: "patch_size", hiddenSize: "hidden_size", numLayers: "num_hidden_layers", numHeads: "num_attention_heads",
  intermediateSize: "intermediate_size", decoderHiddenSize: "decoder_hidden_size", decoderLayers: "decoder_num_hidden_layers",
  decoderHeads: "decoder_num_attention_heads", decoderIntermediateSize: "decoder_intermediate_size", layerNormEps: "layer_norm_eps", maskRatio: "mask_ratio",
} as const satisfies Partial<Record<keyof z.output<typeof MAE_OPTIONS>, keyof ViTMAEConfig>>;

export async function maeCommand(argv: string[]): Promise<number> {
  const { options: o, positionals, help } = parseOptions(argv, MAE_OPTIONS);
  if (help) {
    console.log(usage("mae", SUMMARY, MAE_OPTIONS));
    return 0;
  }
  if (positionals.length) throw new Error(`unexpected argument "${positionals[0]}" (see pnpm train mae --help)`);
  const engine = await chooseEngine(o.engine);
  const gradients: MaeGradientEngine = async (mae, variables, run) => (await import("@lm4lv/onnx")).ortMaeGradients(mae, variables, { ...run, threads: o.threads });
  const backend = await initBackend(o.backend);
  const overrides: Partial<ViTMAEConfig> = Object.fromEntries(Object.entries(OVERRIDES).map(([flag, field]) => [field, o[flag as keyof typeof OVERRIDES]]));
  const config = o.init ? undefined : vitMAEPreset(o.preset, overrides);
  console.error(`backend: ${backend}`);
  const clipNorm = o.clip === undefined ? undefined : o.clip > 0 ? o.clip : null;
  const result = await trainMae({ ...o, config, clipNorm, gradients: engine === "ort" ? gradients : undefined });
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
