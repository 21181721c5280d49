/**
 * Adapter checkpoints: a folder with
 *
 *   adapters.safetensors   the trained parameters only, under their stable names (F32, or F16 to ship)
 *   lm4lv.json             everything needed to rebuild the run (models, task, sizes, step, extra)
 *
 * Each file is written atomically (temporary file + rename); the tensors first, so a folder whose
 * lm4lv.json exists always has its tensors. Loading checks every tensor name and shape against the
 * sizes of the models it is going to be used with and names everything that does not fit.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { SafetensorsFile, nonNegativeInt, oneOf, positiveInt, positiveNumber, readJsonFile, validateConfig, writeFileAtomic, writeSafetensors } from "@lm4lv/core";
import { ADAPTER_PARAM_NAMES, LM4LVAdapters, adapterParamShapes } from "./adapters.js";
import type { AdapterParamName } from "./adapters.js";
import { LlamaLora, loraParamShapes } from "./lora.js";
import type { LlamaLike } from "./lora.js";

export const ADAPTERS_FILE = "adapters.safetensors";
export const RUN_FILE = "lm4lv.json";
export const CHECKPOINT_FORMAT = "lm4lv-adapters";
export const CHECKPOINT_VERSION = 1;

const folder = () => z.string("expected a folder path (a string)");

/** `extra`: anything worth keeping (optimiser settings, data, seed, ...); `tokenizer` names the tokenizer folder when it is not the LLM's. */
const EXTRA_SCHEMA = z.looseObject({ tokenizer: folder().optional() });

/** What the caller knows about the run; sizes come from the adapters themselves. */
export const RUN_INFO_SCHEMA = z.object({
  /** Folder (or hub id) of the MAE checkpoint. */
  visionModel: folder(),
  /** Folder (or hub id) of the Llama checkpoint. */
  llm: folder(),
  /** Task name, e.g. "denoise_50". */
  task: z.string("expected a task name (a string)"),
  /** Visual positions per image (1 + (image/patch)²); per tile when `tiles` > 1. */
  numVisualTokens: nonNegativeInt(),
  /** Tiles per side: images are restored as a tiles × tiles grid of MAE-size tiles, one sequence each (1: the paper's recipe). */
  tiles: positiveInt().default(1),
  /** Optimiser steps done. */
  step: nonNegativeInt(),
  /** Anything else worth keeping (optimiser settings, data, seed, ...). */
  extra: EXTRA_SCHEMA.optional(),
});

export type RunInfo = z.input<typeof RUN_INFO_SCHEMA>;

/** The first field read: a JSON file that is not an LM4LV checkpoint stops here. */
const FORMAT_SCHEMA = z.looseObject({
  format: z.literal(CHECKPOINT_FORMAT, `expected "${CHECKPOINT_FORMAT}" (not an LM4LV adapter checkpoint)`),
});

/** Then the version: a checkpoint of another version stops here. */
const HEADER_SCHEMA = FORMAT_SCHEMA.extend({
  version: z.literal(CHECKPOINT_VERSION, `expected ${CHECKPOINT_VERSION} (the version this code reads)`),
});

/** LoRA settings of a checkpoint holding LoRA matrices. */
const LORA_INFO_SCHEMA = z.object({
  rank: positiveInt(),
  alpha: positiveNumber(),
  targets: z.array(oneOf(["q", "k", "v", "o"])),
  seed: z.number("expected an integer").int("expected an integer").default(0),
});

/** lm4lv.json: the run plus what the adapters' shapes say; fields it does not list are kept. */
export const CHECKPOINT_INFO_SCHEMA = HEADER_SCHEMA.extend({
  ...RUN_INFO_SCHEMA.shape,
  visionHidden: nonNegativeInt(),
  llmHidden: nonNegativeInt(),
  numTaskTokens: nonNegativeInt(),
  /** LoRA settings when the checkpoint holds LoRA matrices, else null. */
  lora: LORA_INFO_SCHEMA.nullable().default(null),
  extra: EXTRA_SCHEMA.default({}),
});

/** The content of lm4lv.json. */
export type CheckpointInfo = z.output<typeof CHECKPOINT_INFO_SCHEMA>;

export class CheckpointError extends Error {}

/** Storage types of adapters.safetensors: F32 (exact, the default) or F16 (half the bytes, for shipped checkpoints). */
export const ADAPTER_DTYPES = ["F32", "F16"] as const;
export type AdapterDtype = (typeof ADAPTER_DTYPES)[number];

export interface SaveAdaptersOptions {
  /** LoRA matrices to store with the adapters. */
  lora?: LlamaLora;
  /** Storage type of every tensor (default F32). Loading converts back to F32 whatever was stored. */
  dtype?: AdapterDtype;
}

/**
 * Writes `dir/adapters.safetensors` and `dir/lm4lv.json` (creating `dir`); with `lora`, its
 * matrices are stored too. Returns the info written.
 */
export function saveAdapters(dir: string, adapters: LM4LVAdapters, runInfo: RunInfo, options: SaveAdaptersOptions = {}): CheckpointInfo {
  const { lora, dtype = "F32" } = options;
  if (!(ADAPTER_DTYPES as readonly string[]).includes(dtype)) throw new CheckpointError(`saveAdapters: dtype must be one of ${ADAPTER_DTYPES.join(", ")}, got ${JSON.stringify(dtype)}`);
  const run = validateConfig(runInfo, RUN_INFO_SCHEMA, (path) => `saveAdapters: run.${path.join(".")}`, { error: CheckpointError });
  const info: CheckpointInfo = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    visionModel: run.visionModel,
    llm: run.llm,
    task: run.task,
    visionHidden: adapters.visionHidden,
    llmHidden: adapters.llmHidden,
    numVisualTokens: run.numVisualTokens,
    tiles: run.tiles,
    numTaskTokens: adapters.numTaskTokens,
    step: run.step,
    lora: lora ? { rank: lora.config.rank, alpha: lora.config.alpha, targets: [...lora.config.targets], seed: lora.config.seed } : null,
    extra: run.extra ?? {},
  };
  mkdirSync(dir, { recursive: true });
  const snapshot = adapters.snapshot();
  const tensors: Record<string, { shape: number[]; data: Float32Array; dtype: AdapterDtype }> = {};
  for (const name of ADAPTER_PARAM_NAMES) tensors[name] = { ...snapshot[name], dtype };
  if (lora) for (const [name, t] of Object.entries(lora.snapshot())) tensors[name] = { ...t, dtype };
  writeSafetensors(join(dir, ADAPTERS_FILE), tensors, { format: CHECKPOINT_FORMAT, step: String(run.step) });
  writeFileAtomic(join(dir, RUN_FILE), JSON.stringify(info, null, 2) + "\n");
  return info;
}

/** Reads and validates `dir/lm4lv.json` (CHECKPOINT_INFO_SCHEMA); errors name the file and every bad field. */
export function readCheckpointInfo(dir: string): CheckpointInfo {
  const { path, json } = readJsonFile(dir, RUN_FILE);
  validateConfig(json, FORMAT_SCHEMA, path, { error: CheckpointError });
  validateConfig(json, HEADER_SCHEMA, path, { error: CheckpointError });
  return validateConfig(json, CHECKPOINT_INFO_SCHEMA, path, { error: CheckpointError });
}

export interface LoadAdaptersOptions {
  /** Feature width of the MAE the adapters will read/write. */
  visionHidden: number;
  /** Hidden size of the LLM the adapters will feed. */
  llmHidden: number;
}

/**
 * Loads adapters saved by `saveAdapters`, checked against the models they will be used with:
 * every expected tensor must be present with the expected shape, and nothing else may be stored.
 * All problems are reported at once, each naming the tensor (or field), expected vs found.
 */
export function loadAdapters(dir: string, expected: LoadAdaptersOptions): { adapters: LM4LVAdapters; info: CheckpointInfo } {
  const info = readCheckpointInfo(dir);
  const file = join(dir, ADAPTERS_FILE);
  if (!existsSync(file)) throw new CheckpointError(`${file}: file not found (lm4lv.json is there, the tensors are not)`);

  const problems: string[] = [];
  if (info.visionHidden !== expected.visionHidden) problems.push(`visionHidden: the vision model has ${expected.visionHidden}, the checkpoint was trained with ${info.visionHidden}`);
  if (info.llmHidden !== expected.llmHidden) problems.push(`llmHidden: the LLM has ${expected.llmHidden}, the checkpoint was trained with ${info.llmHidden}`);

  const shapes = adapterParamShapes(expected.visionHidden, expected.llmHidden, info.numTaskTokens);
  const st = SafetensorsFile.open(file);
  try {
    const stored = new Set(st.keys());
    for (const name of ADAPTER_PARAM_NAMES) {
      if (!stored.has(name)) {
        problems.push(`${name}: missing (expected shape ${JSON.stringify(shapes[name])})`);
        continue;
      }
      const found = st.entry(name).shape;
      if (JSON.stringify(found) !== JSON.stringify(shapes[name])) {
        problems.push(`${name}: expected shape ${JSON.stringify(shapes[name])}, found ${JSON.stringify(found)}`);
      }
    }
    for (const name of stored) {
      if (info.lora && name.startsWith("lora.")) continue; // checked by loadLora against the LLM
      if (!(ADAPTER_PARAM_NAMES as readonly string[]).includes(name)) problems.push(`${name}: unexpected tensor (shape ${JSON.stringify(st.entry(name).shape)})`);
    }
    if (problems.length > 0) {
      throw new CheckpointError(`${dir}: the adapter checkpoint does not fit these models:\n  ${problems.join("\n  ")}`);
    }
    const values = {} as Record<AdapterParamName, Float32Array>;
    for (const name of ADAPTER_PARAM_NAMES) values[name] = st.readFloat32(name);
    const adapters = new LM4LVAdapters({ visionHidden: expected.visionHidden, llmHidden: expected.llmHidden, numTaskTokens: info.numTaskTokens }, values);
    return { adapters, info };
  } finally {
    st.close();
  }
}

/**
 * The LoRA matrices of a checkpoint, for the given base Llama (shapes checked against its
 * projections, every mismatch named), or undefined when the checkpoint has none.
 */
export function loadLora(dir: string, base: LlamaLike): LlamaLora | undefined {
  const info = readCheckpointInfo(dir);
  if (!info.lora) return undefined;
  const file = join(dir, ADAPTERS_FILE);
  const shapes = loraParamShapes(base, info.lora);
  const st = SafetensorsFile.open(file);
  try {
    const stored = new Set(st.keys().filter((k) => k.startsWith("lora.")));
    const problems: string[] = [];
    for (const [name, shape] of Object.entries(shapes)) {
      if (!stored.has(name)) problems.push(`${name}: missing (expected shape ${JSON.stringify(shape)})`);
      else if (JSON.stringify(st.entry(name).shape) !== JSON.stringify(shape)) problems.push(`${name}: expected shape ${JSON.stringify(shape)}, found ${JSON.stringify(st.entry(name).shape)}`);
    }
    for (const name of stored) if (!(name in shapes)) problems.push(`${name}: unexpected tensor (shape ${JSON.stringify(st.entry(name).shape)})`);
    if (problems.length > 0) throw new CheckpointError(`${dir}: the LoRA matrices do not fit this LLM:\n  ${problems.join("\n  ")}`);
    const values: Record<string, Float32Array> = {};
    for (const name of Object.keys(shapes)) values[name] = st.readFloat32(name);
    return new LlamaLora(base, info.lora, values);
  } finally {
    st.close();
  }
}
