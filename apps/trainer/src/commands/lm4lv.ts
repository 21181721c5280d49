/**
 * pnpm train lm4lv — adapters + task tokens, with the LLM, the MAE encoder and decoder frozen.
 * With no arguments: a denoising adapter set over the embedded default models and bundled images.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { defaultOf, initBackend, oneOf, positiveInt } from "@lm4lv/core";
import { FolderPairDataset, JsonDataset, parseTaskParams } from "@lm4lv/data";
import { ADAPTERS_ONLY_TRAINING_OPTIONS, LM4LV, LM4LV_TRAINING_OPTIONS, loadModels, trainAdaptersOnly, trainLM4LV } from "@lm4lv/pipeline";
import type { LM4LVGradientEngine } from "@lm4lv/pipeline";
import { parseOptions, usage } from "../options.js";
import { chooseEngine } from "../engine.js";
import { REPO_ROOT } from "../paths.js";

// The training hyperparameters and their defaults are the trainers' (spec §7 for LM4LV); an option
// the run does not set is left to the trainer of the chosen --mode.
const T = LM4LV_TRAINING_OPTIONS.shape;
const A = ADAPTERS_ONLY_TRAINING_OPTIONS.shape;
const trainerDefault = (lm4lv: z.ZodType, adaptersOnly: z.ZodType) => {
  const [a, b] = [defaultOf(lm4lv), defaultOf(adaptersOnly)];
  return `(default ${a}${a === b ? "" : `; adapters-only ${b}`})`;
};

export const LM4LV_OPTIONS = z.object({
  mae: z.string().default("models/mae-tiny").describe("HF ViTMAEForPreTraining folder (frozen)"),
  llm: z.string().default("models/lm-wide").describe("HF LlamaForCausalLM folder (frozen)"),
  tokenizer: z.string().optional().describe("folder with tokenizer.json (default: the LLM folder)"),
  task: z.string().default("denoise").describe("degradation task (pnpm degrade tasks lists them)"),
  params: z.string().optional().describe("task parameter overrides, e.g. \"sigma=25\" or \"patch=8,ratio=0.25\""),
  data: z.string().default("assets/train-images").describe("folder of clean images (pairs made on the fly) or a pairs JSON"),
  val: z.string().default("assets/test-images").describe("clean validation images (or a pairs JSON)"),
  tiles: positiveInt().default(1).describe("outside the paper's recipe: restore images as a tiles × tiles grid of MAE-size tiles, one LM sequence each (images are tiles × the MAE's size)"),
  valCount: T.valCount.describe("validation images restored at each validation"),
  out: z.string().default("runs/lm4lv-denoise").describe("output folder (checkpoint, loss.svg, loss.csv, samples.png)"),
  steps: positiveInt().default(100).describe("optimiser steps"),
  batchSize: T.batchSize.removeDefault().optional().describe(`pairs per micro-batch ${trainerDefault(T.batchSize, A.batchSize)}`),
  gradAccum: T.gradAccum.describe("micro-batches per step"),
  lr: T.lr.removeDefault().optional().describe(`peak learning rate ${trainerDefault(T.lr, A.lr)}; spec §7 uses 3e-4 at batch 256`),
  clip: T.clipNorm.describe("gradient clipping (global norm)"),
  seed: T.seed.describe("seed of adapters init, data order and degradations"),
  checkpointEvery: T.checkpointEvery.describe("steps between checkpoints"),
  validateEvery: T.validateEvery.describe("steps between validations (0: only at the end)"),
  resume: T.resume.describe("continue from <out>/checkpoints/last.safetensors"),
  mode: oneOf(["lm4lv", "adapters-only"]).default("lm4lv").describe("lm4lv, or adapters-only (ablation: adapter → de-adapter, no LM)"),
  engine: oneOf(["ort", "tfjs"]).optional().describe("gradient engine (default: ort when onnxruntime-node loads, else tfjs)"),
  threads: T.threads.describe("ONNX Runtime threads (default: the number of cores)"),
  inputNoise: T.inputNoise.describe("outside the paper's recipe: std of noise on the teacher-forced clean features (ORT engine)"),
  saveDtype: T.saveDtype.describe("storage type of the final adapters.safetensors: F32, or F16 (half the bytes; the shipped checkpoints)"),
  adapterMaxRms: T.adapterMaxRms.describe("outside the paper's recipe: keep the adapter's output RMS (unit-RMS input) at most this, e.g. the LM's token-embedding RMS"),
});

const SUMMARY = "Trains the LM4LV adapters and task tokens (spec §3-§4, §7) with everything else frozen.";

function repoPath(p: string): string {
  // defaults are relative to the repository; user paths to the current folder
  const here = resolve(p);
  return existsSync(here) ? here : resolve(REPO_ROOT, p);
}

export async function lm4lvCommand(argv: string[]): Promise<number> {
  const { options: o, help } = parseOptions(argv, LM4LV_OPTIONS);
  if (help) {
    console.log(usage("lm4lv", SUMMARY, LM4LV_OPTIONS));
    return 0;
  }
  const task = o.task;
  const params = o.params ? parseTaskParams(task, o.params.split(",")) : undefined;
  const maeDir = repoPath(o.mae);
  const llmDir = repoPath(o.llm);
  for (const [name, dir] of [["--mae", maeDir], ["--llm", llmDir]]) {
    if (!existsSync(dir)) throw new Error(`${name} ${dir}: folder not found`);
  }
  const backend = await initBackend();
  const models = await loadModels({ mae: maeDir, llm: llmDir, tokenizer: o.tokenizer ? repoPath(o.tokenizer) : undefined });
  const model = LM4LV.create(models, { task, seed: o.seed, tiles: o.tiles });
  const size = model.imageSize; // the images it restores: tiles × the MAE's size
  const source = (p: string) => {
    const path = repoPath(p);
    if (!existsSync(path)) throw new Error(`${p}: no such folder or pairs JSON`);
    return path.endsWith(".json") ? JsonDataset.open(path, { size }) : new FolderPairDataset(path, task, { size, seed: o.seed, params });
  };
  const train = source(o.data);
  const val = o.val ? source(o.val) : undefined;
  const out = resolve(o.out);
  const engine = await chooseEngine(o.engine);
  const gradients: LM4LVGradientEngine = async (m, run) => (await import("@lm4lv/onnx")).ortLM4LVGradients(m, run);
  console.error(`lm4lv train: task ${task}, ${train.length} training images at ${size}px${o.tiles > 1 ? ` (${o.tiles}×${o.tiles} tiles of ${models.vision.imageSize}px)` : ""}, ${model.numVisualTokens} visual tokens, LLM width ${models.lm.hiddenSize}, ${engine === "ort" ? "onnxruntime" : `tfjs-${backend}`} → ${out}`);
  if (o.mode === "adapters-only") {
    const r = await trainAdaptersOnly({ model, train, outDir: out, steps: o.steps, batchSize: o.batchSize, lr: o.lr, seed: o.seed, resume: o.resume });
    console.log(`${r.status} at step ${r.step}; adapters-only checkpoint → ${out}`);
    return 0;
  }
  const result = await trainLM4LV({
    model,
    train,
    val,
    valCount: o.valCount,
    outDir: out,
    steps: o.steps,
    batchSize: o.batchSize,
    gradAccum: o.gradAccum,
    lr: o.lr,
    clipNorm: o.clip,
    seed: o.seed,
    checkpointEvery: o.checkpointEvery,
    validateEvery: o.validateEvery,
    resume: o.resume,
    engine,
    gradients: engine === "ort" ? gradients : undefined,
    threads: o.threads,
    inputNoise: o.inputNoise,
    adapterMaxRms: o.adapterMaxRms,
    saveDtype: o.saveDtype,
    extra: { params: params ?? null, data: o.data, seed: o.seed },
  });
  if (result.final) {
    const f = result.final;
    console.log(`validation (${Math.min(o.valCount, val?.length ?? 0)} images): input ${f.psnrInput.toFixed(2)} dB / ${f.ssimInput.toFixed(4)} → restored ${f.psnr.toFixed(2)} dB / ${f.ssim.toFixed(4)}`);
  }
  console.log(`${result.status} at step ${result.step}; checkpoint → ${out} (pnpm infer --checkpoint ${out} <image>)`);
  console.log(`loss curve → ${join(out, "loss.svg")} (history: loss.csv)${val ? `, samples → ${join(out, "samples.png")}` : ""}`);
  return 0;
}
