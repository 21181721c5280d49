/**
 * Adapter checkpoints: a folder with
 *
 *   adapters.safetensors   the trained parameters only, under their stable names (F32)
 *   lm4lv.json             everything needed to rebuild the run (models, task, sizes, step, extra)
 *
 * Each file is written atomically (temporary file + rename); the tensors first, so a folder whose
 * lm4lv.json exists always has its tensors. Loading checks every tensor name and shape against the
 * sizes of the models it is going to be used with and names everything that does not fit.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile, readJsonFile, writeFileAtomic, writeSafetensors } from "@lm4lv/core";
import { ADAPTER_PARAM_NAMES, LM4LVAdapters, adapterParamShapes } from "./adapters.js";
import type { AdapterParamName } from "./adapters.js";
import { LlamaLora, loraParamShapes } from "./lora.js";
import type { LlamaLike, LoraTarget } from "./lora.js";

export const ADAPTERS_FILE = "adapters.safetensors";
export const RUN_FILE = "lm4lv.json";
export const CHECKPOINT_FORMAT = "lm4lv-adapters";
export const CHECKPOINT_VERSION = 1;

/** What the caller knows about the run; sizes come from the adapters themselves. */
export interface RunInfo {
  /** Folder (or hub id) of the MAE checkpoint. */
  visionModel: string;
  /** Folder (or hub id) of the Llama checkpoint. */
  llm: string;
  /** Task name, e.g. "denoise_50". */
  task: string;
  /** Visual positions per image (1 + (image/patch)²). */
  numVisualTokens: number;
  /** Optimiser steps done. */
  step: number;
  /** Anything else worth keeping (optimiser settings, data, seed, ...). */
  extra?: Record<string, unknown>;
}

/** The content of lm4lv.json. */
export interface CheckpointInfo extends RunInfo {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  visionHidden: number;
  llmHidden: number;
  numTaskTokens: number;
  /** LoRA settings when the checkpoint holds LoRA matrices, else null. */
  lora: { rank: number; alpha: number; targets: LoraTarget[]; seed: number } | null;
  extra: Record<string, unknown>;
}

export class CheckpointError extends Error {}

/**
 * Writes `dir/adapters.safetensors` and `dir/lm4lv.json` (creating `dir`); with `lora`, its
 * matrices are stored too. Returns the info written.
 */
export function saveAdapters(dir: string, adapters: LM4LVAdapters, run: RunInfo, lora?: LlamaLora): CheckpointInfo {
  for (const field of ["visionModel", "llm", "task"] as const) {
    if (typeof run[field] !== "string") throw new CheckpointError(`saveAdapters: run.${field} must be a string`);
  }
  for (const field of ["numVisualTokens", "step"] as const) {
    if (!Number.isInteger(run[field]) || run[field] < 0) throw new CheckpointError(`saveAdapters: run.${field} must be a non-negative integer, got ${run[field]}`);
  }
  const info: CheckpointInfo = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    visionModel: run.visionModel,
    llm: run.llm,
    task: run.task,
    visionHidden: adapters.visionHidden,
    llmHidden: adapters.llmHidden,
    numVisualTokens: run.numVisualTokens,
    numTaskTokens: adapters.numTaskTokens,
    step: run.step,
    lora: lora ? { rank: lora.config.rank, alpha: lora.config.alpha, targets: [...lora.config.targets], seed: lora.config.seed } : null,
    extra: run.extra ?? {},
  };
  mkdirSync(dir, { recursive: true });
  const snapshot = adapters.snapshot();
  const tensors: Record<string, { shape: number[]; data: Float32Array; dtype: "F32" }> = {};
  for (const name of ADAPTER_PARAM_NAMES) tensors[name] = { ...snapshot[name], dtype: "F32" };
  if (lora) for (const [name, t] of Object.entries(lora.snapshot())) tensors[name] = { ...t, dtype: "F32" };
  writeSafetensors(join(dir, ADAPTERS_FILE), tensors, { format: CHECKPOINT_FORMAT, step: String(run.step) });
  writeFileAtomic(join(dir, RUN_FILE), JSON.stringify(info, null, 2) + "\n");
  return info;
}

/** Reads and checks `dir/lm4lv.json`. */
export function readCheckpointInfo(dir: string): CheckpointInfo {
  const { path, json } = readJsonFile(dir, RUN_FILE);
  if (json.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${path}: format is ${JSON.stringify(json.format)}, expected "${CHECKPOINT_FORMAT}"`);
  if (json.version !== CHECKPOINT_VERSION) throw new CheckpointError(`${path}: version ${JSON.stringify(json.version)} is not supported (expected ${CHECKPOINT_VERSION})`);
  for (const field of ["visionModel", "llm", "task"]) {
    if (typeof json[field] !== "string") throw new CheckpointError(`${path}: field "${field}" must be a string`);
  }
  for (const field of ["visionHidden", "llmHidden", "numVisualTokens", "numTaskTokens", "step"]) {
    const v = json[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new CheckpointError(`${path}: field "${field}" must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if (json.extra !== undefined && (typeof json.extra !== "object" || json.extra === null || Array.isArray(json.extra))) {
    throw new CheckpointError(`${path}: field "extra" must be an object`);
  }
  const lora = json.lora ?? null;
  if (lora !== null) {
    const l = lora as Record<string, unknown>;
    if (typeof l !== "object" || !Number.isInteger(l.rank) || typeof l.alpha !== "number" || !Array.isArray(l.targets)) {
      throw new CheckpointError(`${path}: field "lora" must be null or {rank, alpha, targets, seed}`);
    }
  }
  return { ...(json as unknown as CheckpointInfo), lora: lora as CheckpointInfo["lora"], extra: (json.extra as Record<string, unknown>) ?? {} };
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
