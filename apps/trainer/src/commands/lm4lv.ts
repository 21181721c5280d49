/**
 * pnpm train lm4lv — adapters + task tokens, with the LLM, the MAE encoder and decoder frozen.
 * With no arguments: a denoising adapter set over the embedded default models and bundled images.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { initBackend } from "@lm4lv/core";
import { FolderPairDataset, JsonDataset, parseTaskParams } from "@lm4lv/data";
import { LM4LV, loadModels, ortAvailable, trainAdaptersOnly, trainLM4LV } from "@lm4lv/pipeline";
import { parseOptions, usage, type OptionSpecs } from "../options.js";
import { REPO_ROOT } from "../paths.js";

const SPECS: OptionSpecs = {
  mae: { type: "string", default: "models/mae-tiny", help: "HF ViTMAEForPreTraining folder (frozen)" },
  llm: { type: "string", default: "models/lm-tiny", help: "HF LlamaForCausalLM folder (frozen)" },
  tokenizer: { type: "string", help: "folder with tokenizer.json (default: the LLM folder)" },
  task: { type: "string", default: "denoise", help: "degradation task (pnpm degrade tasks lists them)" },
  params: { type: "string", help: "task parameter overrides, e.g. \"sigma=25\" or \"patch=8,ratio=0.25\"" },
  data: { type: "string", default: "assets/train-images", help: "folder of clean images (pairs made on the fly) or a pairs JSON" },
  val: { type: "string", default: "assets/test-images", help: "clean validation images (or a pairs JSON)" },
  valCount: { type: "integer", default: 4, help: "validation images restored at each validation" },
  out: { type: "string", default: "runs/lm4lv-denoise", help: "output folder (checkpoint, loss.svg, loss.csv, samples.png)" },
  steps: { type: "integer", default: 100, help: "optimiser steps" },
  batchSize: { type: "integer", default: 4, help: "pairs per micro-batch" },
  gradAccum: { type: "integer", default: 1, help: "micro-batches per step" },
  lr: { type: "number", default: 3e-3, help: "peak learning rate (spec §7 uses 3e-4 at batch 256)" },
  clip: { type: "number", default: 1.0, help: "gradient clipping (global norm)" },
  seed: { type: "integer", default: 0, help: "seed of adapters init, data order and degradations" },
  checkpointEvery: { type: "integer", default: 50, help: "steps between checkpoints" },
  validateEvery: { type: "integer", default: 0, help: "steps between validations (0: only at the end)" },
  resume: { type: "boolean", default: false, help: "continue from <out>/checkpoints/last.safetensors" },
  mode: { type: "string", default: "lm4lv", help: "lm4lv, or adapters-only (ablation: adapter → de-adapter, no LM)" },
  engine: { type: "string", help: "gradient engine: ort (default when onnxruntime-node loads) or tfjs" },
  threads: { type: "integer", help: "ONNX Runtime threads (default: the number of cores)" },
  inputNoise: { type: "number", default: 0, help: "outside the paper's recipe: std of noise on the teacher-forced clean features (ORT engine)" },
  adapterMaxRms: { type: "number", help: "outside the paper's recipe: keep the adapter's output RMS (unit-RMS input) at most this, e.g. the LM's token-embedding RMS" },
};

const SUMMARY = "Trains the LM4LV adapters and task tokens (spec §3-§4, §7) with everything else frozen.";

function repoPath(p: string): string {
  // defaults are relative to the repository; user paths to the current folder
  const here = resolve(p);
  return existsSync(here) ? here : resolve(REPO_ROOT, p);
}

export async function lm4lvCommand(argv: string[]): Promise<number> {
  const { options: o, help } = parseOptions(argv, SPECS);
  if (help) {
    console.log(usage("lm4lv", SUMMARY, SPECS));
    return 0;
  }
  const task = o.task as string;
  const params = o.params ? parseTaskParams(task, String(o.params).split(",")) : undefined;
  const maeDir = repoPath(o.mae as string);
  const llmDir = repoPath(o.llm as string);
  for (const [name, dir] of [["--mae", maeDir], ["--llm", llmDir]]) {
    if (!existsSync(dir)) throw new Error(`${name} ${dir}: folder not found`);
  }
  const backend = await initBackend();
  const models = await loadModels({ mae: maeDir, llm: llmDir, tokenizer: o.tokenizer ? repoPath(o.tokenizer as string) : undefined });
  const size = models.vision.imageSize;
  const source = (p: string) => {
    const path = repoPath(p);
    if (!existsSync(path)) throw new Error(`${p}: no such folder or pairs JSON`);
    return path.endsWith(".json") ? JsonDataset.open(path, { size }) : new FolderPairDataset(path, task, { size, seed: o.seed as number, params });
  };
  const train = source(o.data as string);
  const val = o.val ? source(o.val as string) : undefined;
  const model = LM4LV.create(models, { task, seed: o.seed as number });
  const out = resolve(o.out as string);
  const engine = (o.engine as string | undefined) ?? ((await ortAvailable()) ? "ort" : "tfjs");
  if (engine !== "ort" && engine !== "tfjs") throw new Error(`--engine should be ort or tfjs, got ${JSON.stringify(engine)}`);
  console.error(`lm4lv train: task ${task}, ${train.length} training images at ${size}px, ${model.numVisualTokens} visual tokens, LLM width ${models.lm.hiddenSize}, ${engine === "ort" ? "onnxruntime" : `tfjs-${backend}`} → ${out}`);
  if (o.mode === "adapters-only") {
    const r = await trainAdaptersOnly({ model, train, outDir: out, steps: o.steps as number, batchSize: o.batchSize as number, lr: o.lr as number, seed: o.seed as number, resume: o.resume as boolean });
    console.log(`${r.status} at step ${r.step}; adapters-only checkpoint → ${out}`);
    return 0;
  }
  if (o.mode !== "lm4lv") throw new Error(`option "mode" should be lm4lv or adapters-only, got ${JSON.stringify(o.mode)}`);
  const result = await trainLM4LV({
    model,
    train,
    val,
    valCount: o.valCount as number,
    outDir: out,
    steps: o.steps as number,
    batchSize: o.batchSize as number,
    gradAccum: o.gradAccum as number,
    lr: o.lr as number,
    clipNorm: o.clip as number,
    seed: o.seed as number,
    checkpointEvery: o.checkpointEvery as number,
    validateEvery: o.validateEvery as number,
    resume: o.resume as boolean,
    engine,
    threads: o.threads as number | undefined,
    inputNoise: o.inputNoise as number,
    adapterMaxRms: o.adapterMaxRms as number | undefined,
    extra: { params: params ?? null, data: o.data, seed: o.seed },
  });
  if (result.final) {
    const f = result.final;
    console.log(`validation (${Math.min(o.valCount as number, val?.length ?? 0)} images): input ${f.psnrInput.toFixed(2)} dB / ${f.ssimInput.toFixed(4)} → restored ${f.psnr.toFixed(2)} dB / ${f.ssim.toFixed(4)}`);
  }
  console.log(`${result.status} at step ${result.step}; checkpoint → ${out} (pnpm infer --checkpoint ${out} <image>)`);
  console.log(`loss curve → ${join(out, "loss.svg")} (history: loss.csv)${val ? `, samples → ${join(out, "samples.png")}` : ""}`);
  return 0;
}
