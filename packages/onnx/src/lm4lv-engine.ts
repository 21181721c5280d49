/**
 * ONNX Runtime as the inference engine of an LM4LV checkpoint (`LM4LV` of @lm4lv/pipeline, which
 * takes it as its `GenerationEngine`): the MAE encoder/decoder and the folded LM step (adapter →
 * LLM step → final norm → de-adapter; the same graph and session serve the LM's prefill and
 * decode) are exported once into `<checkpoint>/onnx/` (rebuilt when the weights change; each
 * `quantize` setting, and each int4 block size, in its own sub-folder), then run in ORT.
 *
 *   withOrtEngine(model, ckpt)   a loaded (tfjs) LM4LV → a copy that infers in ORT
 *   loadOrtLM4LV(ckpt)           straight from the checkpoint's folders: the LM and the MAE are
 *                                never loaded in tfjs (exported by streaming their safetensors),
 *                                so the process holds one copy of the LM weights, in ORT's format;
 *                                the prompt is embedded by ORT's CausalLM (its embedding graph)
 */
import { join, resolve } from "node:path";
import { readCheckpointInfo, resolveModelReferences, type ResolveModelsOptions } from "@lm4lv/adapters";
import { Tokenizer } from "@lm4lv/tokenizer";
import { LM4LV, type GenerationEngine, type LM4LVModels } from "@lm4lv/pipeline";
import type { Int4BlockSize, WeightFormat } from "./available.js";
import { ensureExported, loadOrtModels, weightSetting, type OrtModels } from "./export.js";
import { generateVisualTokensOrt } from "./runtime.js";

export interface OrtEngineOptions {
  /** Export folder (default `<checkpoint>/onnx`; a `quantize` other than fp32 uses `<cacheDir>/<format>`, see `exportDirFor`). */
  cacheDir?: string;
  /** ORT intra-op threads (default: the number of cores). */
  threads?: number;
  /** "folded" (one ORT call per visual token, default) or "step" (the sampler over ORT's causal LM). */
  loop?: "folded" | "step";
  /** The LM's linear layers: fp32 (default), fp16, int8 (per channel) or int4 (blocks of `int4BlockSize`). */
  quantize?: WeightFormat;
  /** With `quantize: "int4"`: 32 (default), 64 or 128 weights per block; exported to `<cacheDir>/int4-b<size>` when not 32. */
  int4BlockSize?: Int4BlockSize;
}

export interface OrtEngineResult {
  model: LM4LV;
  /** True when the export was (re)built now. */
  exported: boolean;
  /** The export's base folder (`cacheDir`). */
  cacheDir: string;
  /** The folder the models were loaded from (`cacheDir` for fp32, else `cacheDir/<format>` or `cacheDir/int4-b<size>`). */
  dir: string;
}

/** Exports (or reuses) the checkpoint's models at `opts.quantize` (and int4 block size) and opens them in ORT. */
async function openExport(folders: { mae: string; llm: string }, checkpoint: string, opts: OrtEngineOptions) {
  const { format: quantize } = weightSetting(opts); // checked before anything is read
  const cacheDir = opts.cacheDir ?? join(checkpoint, "onnx");
  const { exported, dir } = ensureExported({ mae: folders.mae, llm: folders.llm, adapters: checkpoint }, cacheDir, { quantize, int4BlockSize: opts.int4BlockSize });
  const ort = await loadOrtModels(dir, { intraOpThreads: opts.threads });
  if (!ort.vision || !ort.lm || !ort.visualStep) {
    ort.dispose();
    throw new Error(`${dir}: the ONNX export lacks the vision, LM or visual-step graph`);
  }
  return { ort: ort as Required<OrtModels>, exported, cacheDir, dir };
}

/** The ORT models as LM4LV's generation engine: the MAE, the LM and (folded loop) the whole visual loop. */
function engineFor(ort: Required<OrtModels>, loop: OrtEngineOptions["loop"], dispose: () => void): GenerationEngine {
  const step = ort.visualStep;
  return {
    name: "onnxruntime",
    vision: ort.vision,
    lm: ort.lm,
    generate: (loop ?? "folded") === "folded" ? (promptEmbeds, numTokens) => generateVisualTokensOrt({ step, promptEmbeds, numTokens }) : undefined,
    dispose,
  };
}

/** Returns a copy of `model` that runs inference in ONNX Runtime; `exported` tells whether the export was (re)built. */
export async function withOrtEngine(model: LM4LV, checkpoint: string, opts: OrtEngineOptions = {}): Promise<OrtEngineResult> {
  const { models } = model;
  const { ort, exported, cacheDir, dir } = await openExport({ mae: models.visionDir, llm: models.llmDir }, checkpoint, opts);
  const engine = model.withGenerationEngine(engineFor(ort, opts.loop, () => ort.dispose()));
  return { model: engine, exported, cacheDir, dir };
}

/**
 * Loads a checkpoint for inference in ONNX Runtime only: the model folders are resolved as
 * `LM4LV.fromCheckpoint` does (`mae`, `llm`, `tokenizer` overrides, then lm4lv.json), exported at
 * `quantize` (cached) and opened in ORT; the MAE, the LM (prompt embedding included) and the
 * visual loop run there, and only the adapters and the tokenizer are loaded in tfjs / JS.
 */
export async function loadOrtLM4LV(checkpoint: string, opts: OrtEngineOptions & ResolveModelsOptions = {}): Promise<OrtEngineResult> {
  const info = readCheckpointInfo(checkpoint);
  const folders = resolveModelReferences(checkpoint, info, opts);
  const tokenizerDir = folders.tokenizer ?? folders.llm;
  const tokenizer = await Tokenizer.fromPretrained(tokenizerDir);
  const { ort, exported, cacheDir, dir } = await openExport(folders, checkpoint, opts);
  try {
    if (tokenizer.vocabSize > ort.lm.vocabSize) {
      throw new Error(`tokenizer in ${tokenizerDir} has ${tokenizer.vocabSize} tokens but the LLM in ${folders.llm} only ${ort.lm.vocabSize} embeddings`);
    }
    const models: LM4LVModels = { vision: ort.vision, lm: ort.lm, tokenizer, visionDir: resolve(folders.mae), llmDir: resolve(folders.llm), tokenizerDir: resolve(tokenizerDir) };
    const base = LM4LV.fromCheckpointWithModels(checkpoint, models, info);
    const model = base.withGenerationEngine(engineFor(ort, opts.loop, () => {
      ort.dispose();
      base.adapters.dispose();
    }));
    return { model, exported, cacheDir, dir };
  } catch (e) {
    ort.dispose();
    throw e;
  }
}
