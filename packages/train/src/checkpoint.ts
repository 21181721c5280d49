/**
 * Training checkpoints: one safetensors file, written atomically (temporary
 * file + rename, by core's writeSafetensors).
 *
 * Tensors:   `<variable name>`                   each trained variable, F32
 *            `optimizer.exp_avg.<name>`           Adam first moment
 *            `optimizer.exp_avg_sq.<name>`        Adam second moment
 * Metadata:  `format`  "lm4lv-train/2"
 *            `state`   JSON {step, optimizerStep, rng, data, bestMetric}
 *            `config`  the run's config JSON (free-form, as given by the caller)
 *            `history` JSON {train: HistoryEntry[], validation: ValidationEntry[]}
 *
 * Formats: since "lm4lv-train/2" the variables are stored under the names and in the layout their
 * model gives them (`namedParameters()` of @lm4lv/mae and @lm4lv/llm: HF names, HF layout).
 * "lm4lv-train/1" files are read too; a model whose variables had other names or layouts then
 * (MAE Linear weights `[in, out]`, Llama `<module>.kernel`) maps them with `upgradeCheckpoint`.
 */
import * as tf from "@tensorflow/tfjs";
import { readSafetensors, transpose2d, writeSafetensors } from "@lm4lv/core";
import type { TensorToWrite } from "@lm4lv/core";
import type { RngState } from "@lm4lv/data";
import type { JsonValue } from "./data.js";
import { arraysEqual } from "./optimizer.js";
import type { AdamState, FloatTensorData, NamedVariables } from "./optimizer.js";

export const CHECKPOINT_FORMAT = "lm4lv-train/2";
/** Older formats `loadCheckpoint` still reads (see the file comment). */
export const LEGACY_CHECKPOINT_FORMATS = ["lm4lv-train/1"] as const;
const OPT_PREFIX = "optimizer.";
/** The Adam moments stored per variable: `<moment>.<variable name>`. */
const MOMENTS = ["exp_avg_sq.", "exp_avg."] as const;

export interface HistoryEntry {
  step: number;
  loss: number;
  /** Named loss parts (empty when the loss function returns a bare scalar). */
  parts: Record<string, number>;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

export interface ValidationEntry {
  step: number;
  metric: number;
  values: Record<string, number>;
}

export interface TrainState {
  /** Completed steps. */
  step: number;
  optimizerStep: number;
  rng: RngState;
  /** The data iterator's state, or null for a batch function. */
  data: JsonValue;
  bestMetric: number | null;
}

export interface CheckpointContent {
  /** The file's format: CHECKPOINT_FORMAT or one of LEGACY_CHECKPOINT_FORMATS. */
  format: string;
  state: TrainState;
  variables: Record<string, FloatTensorData>;
  optimizer: AdamState["tensors"];
  config: JsonValue;
  history: { train: HistoryEntry[]; validation: ValidationEntry[] };
}

/** Copies variables out of tfjs as float32 arrays. */
export function snapshotVariables(vars: NamedVariables): Record<string, FloatTensorData> {
  const out: Record<string, FloatTensorData> = {};
  for (const [n, v] of Object.entries(vars)) out[n] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
  return out;
}

export function saveCheckpoint(path: string, c: Omit<CheckpointContent, "format">): void {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [n, t] of Object.entries(c.variables)) {
    if (n.startsWith(OPT_PREFIX)) throw new Error(`saveCheckpoint ${path}: variable name "${n}" clashes with the optimizer prefix "${OPT_PREFIX}"`);
    tensors[n] = { shape: t.shape, data: t.data, dtype: "F32" };
  }
  for (const [n, t] of Object.entries(c.optimizer)) tensors[OPT_PREFIX + n] = { shape: t.shape, data: t.data, dtype: "F32" };
  writeSafetensors(path, tensors, {
    format: CHECKPOINT_FORMAT,
    state: JSON.stringify(c.state),
    config: JSON.stringify(c.config ?? null),
    history: JSON.stringify(c.history),
  });
}

function parseJson(path: string, field: string, text: string | undefined): unknown {
  if (text === undefined) throw new Error(`${path}: checkpoint metadata has no "${field}" field`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: checkpoint metadata "${field}" is not valid JSON (${(e as Error).message})`);
  }
}

export function loadCheckpoint(path: string): CheckpointContent {
  const { tensors, metadata } = readSafetensors(path);
  const format = metadata.format;
  if (format !== CHECKPOINT_FORMAT && !(LEGACY_CHECKPOINT_FORMATS as readonly string[]).includes(format)) {
    throw new Error(`${path}: not a training checkpoint (metadata format = ${JSON.stringify(format)}, expected "${CHECKPOINT_FORMAT}")`);
  }
  const variables: Record<string, FloatTensorData> = {};
  const optimizer: Record<string, FloatTensorData> = {};
  for (const [n, t] of Object.entries(tensors)) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${path}: tensor "${n}" has dtype ${t.dtype}, expected F32`);
    if (n.startsWith(OPT_PREFIX)) optimizer[n.slice(OPT_PREFIX.length)] = { shape: t.shape, data: t.data };
    else variables[n] = { shape: t.shape, data: t.data };
  }
  const state = parseJson(path, "state", metadata.state) as TrainState;
  if (!state || !Number.isInteger(state.step) || !Array.isArray(state.rng)) throw new Error(`${path}: checkpoint "state" is incomplete: ${metadata.state}`);
  return {
    format,
    state,
    variables,
    optimizer,
    config: parseJson(path, "config", metadata.config) as JsonValue,
    history: parseJson(path, "history", metadata.history) as CheckpointContent["history"],
  };
}

/** Maps one tensor of an older checkpoint to today's variable name and values. */
export type LegacyTensorMap = (name: string, t: FloatTensorData) => [string, FloatTensorData];

/**
 * A checkpoint of a legacy format with every variable and both its Adam moments mapped by `map`
 * (the same function for all three: a moment has its variable's layout). Today's format is
 * returned as it is.
 */
export function upgradeCheckpoint(c: CheckpointContent, map: LegacyTensorMap): CheckpointContent {
  if (c.format === CHECKPOINT_FORMAT) return c;
  const variables = Object.fromEntries(Object.entries(c.variables).map(([n, t]) => map(n, t)));
  const optimizer: Record<string, FloatTensorData> = {};
  for (const [key, t] of Object.entries(c.optimizer)) {
    const moment = MOMENTS.find((m) => key.startsWith(m));
    if (!moment) throw new Error(`checkpoint: optimizer tensor "${key}" is not an Adam moment (${MOMENTS.join(", ")})`);
    const [name, mapped] = map(key.slice(moment.length), t);
    optimizer[moment + name] = mapped;
  }
  return { ...c, format: CHECKPOINT_FORMAT, variables, optimizer };
}

/** `[rows, cols]` → `[cols, rows]` (e.g. a Linear weight stored as a kernel `[in, out]` in a legacy checkpoint). */
export function transposeTensorData(t: FloatTensorData): FloatTensorData {
  if (t.shape.length !== 2) throw new Error(`transposeTensorData: shape [${t.shape}] is not 2-D`);
  const [rows, cols] = t.shape as [number, number];
  return { shape: [cols, rows], data: transpose2d(t.data, rows, cols) };
}

/**
 * Assigns checkpoint tensors to variables. Every variable must be present with
 * its shape; tensors for unknown variables are reported too.
 */
export function restoreVariables(path: string, vars: NamedVariables, saved: Record<string, FloatTensorData>): void {
  const missing = Object.keys(vars).filter((n) => !(n in saved));
  const unexpected = Object.keys(saved).filter((n) => !(n in vars));
  if (missing.length || unexpected.length) {
    throw new Error(`${path}: checkpoint does not match the trained variables` + (missing.length ? `; missing: ${missing.join(", ")}` : "") + (unexpected.length ? `; unexpected: ${unexpected.join(", ")}` : ""));
  }
  for (const [n, v] of Object.entries(vars)) {
    if (!arraysEqual(saved[n].shape, v.shape)) throw new Error(`${path}: tensor "${n}" has shape [${saved[n].shape}], variable has [${v.shape}]`);
  }
  for (const [n, v] of Object.entries(vars)) {
    const t = tf.tensor(saved[n].data, saved[n].shape, "float32");
    v.assign(t);
    t.dispose();
  }
}
